class UserError(Exception):
    """A failure the user caused and can fix (bad params, bad data, bad archive).

    The CLI prints its message as one line and exits non-zero, without a traceback.
    The message names the file / key / value and what was expected.
    """
