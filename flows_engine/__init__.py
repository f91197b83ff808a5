"""A local Flows server that speaks Sohar's Flows API (see shared flows-api.md).

It talks to Flowdesk over HTTP only, exactly as Sohar does in production.
"""
