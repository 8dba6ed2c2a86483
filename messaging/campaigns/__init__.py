"""Campaigns: a manager invites a whole list of patients to book (messaging/models.py, Campaign).

One module a concern: capacity.py (the free times a campaign's invitations can book).
"""
