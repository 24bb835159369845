"""The names of the files simpsons's steps hand to one another, apart from the steps that write
them: report reads them without importing torch and Lightning (~4 s a stage)."""

CLASSES_FILE = "classes.json"  # preprocess: the class names, in label order
PER_CLASS = "per_class.csv"  # evaluate: precision / recall / F1 per character
