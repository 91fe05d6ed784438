"""notification: "sends" order e-mails (records them; no mail server) once per idempotency key, in its own database."""
