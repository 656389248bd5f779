"""``alphapulse dashboard``: the Textual terminal dashboard (model.py holds the state, app.py renders it)."""
