"""Pictures. All plotting code lives here (matplotlib, Agg backend)."""
