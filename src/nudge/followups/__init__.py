"""Follow-ups after a visit: planning, queue messages and the signed webhook."""
