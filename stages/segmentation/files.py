"""The names of the files segmentation's steps hand to one another, apart from the steps that write
them: report reads them without importing torch and Lightning (~4 s a stage)."""

SPLITS_FILE = "splits.json"  # preprocess
PAIRS_TABLE, PER_IMAGE_TABLE = "pairs.csv", "per_image.csv"  # evaluate
