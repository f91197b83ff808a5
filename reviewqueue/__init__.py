"""Queues, review items, claims, forms, submissions: the staff's working day."""
