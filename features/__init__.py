"""Point-in-time feature code and the feature registry: one function per feature, shared by
training, batch scoring and the online service.
"""
