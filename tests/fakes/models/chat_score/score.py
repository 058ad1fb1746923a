"""A score.py chat model: answers the last user message upper-cased, streamed word by word.

With a message saying "fail midway", the stream raises after its first chunk.
"""

import time


def load_model():
    return "shout-1"


def _reply(data):
    return data["messages"][-1]["content"].upper()


def predict(data, model=None):
    reply = _reply(data)
    prompt_tokens = sum(len(m["content"].split()) for m in data["messages"])
    completion_tokens = len(reply.split())
    return {
        "id": "chatcmpl-shout",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def predict_stream(data, model=None):
    words = _reply(data).split()
    for i, word in enumerate(words):
        if i == 1 and word == "MIDWAY":
            raise RuntimeError("the model broke down midway")
        yield {
            "id": "chatcmpl-shout",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word if i == 0 else " " + word},
                    "finish_reason": "stop" if i == len(words) - 1 else None,
                }
            ],
        }
