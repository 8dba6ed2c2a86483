"""Campaigns: a manager invites a whole list of patients to book (messaging/models.py, Campaign).

One module a concern: capacity.py (the free times a campaign's invitations can book);
lists.py (reading an uploaded list: its shape in the request, its rows for the check);
checks.py (the scheduler's check of each row, in batches); creation.py (creating a campaign
with its list, and starting it once checked); forms.py (the New campaign and pace forms);
pacing.py (when and how many invitations are made, each once); invitations.py (a batch of rows
made into links and messages in one transaction); follow_ups.py (the follow-ups to patients
who haven't answered, and who is on the call list); call_list.py (recording the outcome of a
call); funnel.py (how far the invited got, in one query, and each row's outcome for the CSV);
controls.py (pause, resume, stop, revoke every link: conditional UPDATEs, audited).
"""
