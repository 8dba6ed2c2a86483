"""Campaigns: a manager invites a whole list of patients to book (messaging/models.py, Campaign).

One module a concern: capacity.py (the free times a campaign's invitations can book),
pacing.py (when and how many invitations are made, each once), invitations.py (a batch of rows
made into links and messages in one transaction), funnel.py (how far the invited got, in one
query, and each row's outcome for the CSV), controls.py (pause, resume, stop, revoke every link:
conditional UPDATEs, audited).
"""
