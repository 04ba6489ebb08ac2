"""The data layer: the catalogue of raw tables, their contracts and quarantine, units, code lists,
pseudonyms, and the import of an insurer's own extract into those tables.

It knows nothing of features or models, so every layer above reads raw data through one set of rules.
"""
