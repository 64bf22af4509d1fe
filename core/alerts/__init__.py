"""Alerts that reach a person: the `alert.*` events other rooms record, delivered to the
`[alerts]` webhooks and command with retries, backoff and a cooldown per kind."""
