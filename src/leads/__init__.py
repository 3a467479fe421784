"""The lead service: /leads and /leads/{lead_id}."""
