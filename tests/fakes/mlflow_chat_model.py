"""An MLflow ChatModel, saved as "model from code": it repeats the last message, reversed,
and streams one character group at a time."""

from mlflow.models import set_model
from mlflow.pyfunc import ChatModel
from mlflow.types.llm import (
    ChatChoice,
    ChatChoiceDelta,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatMessage,
)


class ReverseChat(ChatModel):
    def _reply(self, messages):
        return messages[-1].content[::-1]

    def predict(self, context, messages, params):
        reply = self._reply(messages)
        return ChatCompletionResponse(
            choices=[ChatChoice(index=0, message=ChatMessage(role="assistant", content=reply))],
            model="reverse-1",
        )

    def predict_stream(self, context, messages, params):
        reply = self._reply(messages)
        for start in range(0, len(reply), 4):
            delta = ChatChoiceDelta(role="assistant", content=reply[start : start + 4])
            yield ChatCompletionChunk(choices=[ChatChunkChoice(index=0, delta=delta)])


set_model(ReverseChat())
