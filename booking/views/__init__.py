"""Booking's pages: patient.py for the link's pages, staff.py for staff pages about bookings."""
