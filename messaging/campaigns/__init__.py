"""Campaigns: a manager invites a whole list of patients to book (messaging/models.py, Campaign).

One module a concern: capacity.py (the free times a campaign's invitations can book),
pacing.py (when and how many invitations are made, each once), invitations.py (a batch of rows
made into links and messages in one transaction), follow_ups.py (the follow-ups to patients
who haven't answered, and who is on the call list), call_list.py (recording the outcome of a
call).
"""
