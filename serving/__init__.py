"""The BentoML scoring service, its request models, decision rules, auth and audit log."""
