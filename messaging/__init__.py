"""Messages to patients: writing them, sending them, and what the providers say happened.

Where delivery lives (the imports run one way, top to bottom):
- sending.py: staff send a message; the link, the message row and its delivery task are
  saved in one transaction.
- tasks.py: the Django Tasks, and the only module that queues work (delivery, retries,
  confirmations, the requeue sweep).
- confirmations.py: the booking confirmation a task writes after a patient books.
- delivery.py: a worker claims a message, sends it, records the outcome or a retry.
- transports/: one per channel (sms.py, email.py) and the one TransportError.
- webhooks.py, status_reports.py, tracking.py: the providers' reports on what happened next.
Opt-outs from texts are written in booking/patients.py (patients_opt_out).
"""
