"""The code DVC runs: `python -m stages <step> <task>`.

One package per task, shared logic in core.
"""

import os

# Nothing here may reach the network unless a user asks for a url source.
for _name, _value in {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}.items():
    os.environ.setdefault(_name, _value)
