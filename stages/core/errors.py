USER_ERROR_EXIT = 2
TRANSIENT_ERROR_EXIT = 75  # EX_TEMPFAIL (sysexits.h): try again later


class UserError(Exception):
    """A failure the user caused and can fix (bad params, bad data, bad archive).

    The CLI prints its message as one line and exits 2, without a traceback. The message names
    the file / key / value and what was expected. Orchestrators do not retry these.
    """


class TransientError(Exception):
    """A failure outside the user's control that may pass on its own (network down, server 5xx).

    The CLI prints one line and exits 75; orchestrators retry the stage with back-off.
    """
