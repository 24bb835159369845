"""The names of the files detection's steps hand to one another, apart from the steps that write
them: report reads them without importing torch and Lightning (~4 s a stage)."""

SPLITS_FILE = "splits.json"  # preprocess
MODELS_TABLE, CLASSES_TABLE = "models.csv", "classes.csv"  # evaluate
