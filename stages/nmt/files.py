"""The names of the files nmt's steps hand to one another, apart from the steps that write
them: report reads them without importing torch and Lightning (~4 s a stage)."""

SPLITS_FILE = "splits.json"  # preprocess
# evaluate
MODELS_TABLE, LENGTH_TABLE, EXAMPLES_TABLE = "models.csv", "bleu_by_length.csv", "examples.csv"
