"""Raw-data contracts, the synthetic cohort generator and the point-in-time feature code.

Everything that turns raw records into model inputs lives here, so training and serving share it.
"""
