"""Answers with the id of the replica that scored, after sleeping as long as asked.

``load_model`` sleeps for the seconds written in the file ``$SLEEPY_LOAD_DELAY_FILE`` names
(none when unset or missing), so a test can make later replicas start slowly.
"""

import os
import time


def load_model():
    path = os.environ.get("SLEEPY_LOAD_DELAY_FILE")
    if path and os.path.exists(path):
        with open(path) as fh:
            time.sleep(float(fh.read().strip() or 0))
    return None


def predict(data, model=None):
    time.sleep(float(data.get("sleep", 0)))
    return {"version": os.environ["REPLICA_ID"]}
