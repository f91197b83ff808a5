"""The boundary between Flowdesk and a Flows server (Sohar's API, or our engine)."""
