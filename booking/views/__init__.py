"""Booking's pages: patient.py for the link's pages, manage.py for the patient's pages after booking
(the appointment, changing and cancelling it), staff.py for staff pages about bookings."""
