"""The official `openai` client against `ibert serve` (crates/ibert/tests/cli/serve.rs).

Lists the models, asks one chat question whole and streamed (greedy, so both must give the same
text), one text completion, and one request over the server's token limit; prints what came back
as JSON for the Rust test to check.
"""

import json
import sys

import openai


def main(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
    models = [model.id for model in client.models.list()]
    messages = [{"role": "user", "content": "Write a long paragraph about databases and tables."}]
    chat = client.chat.completions.create(model=models[0], messages=messages, max_tokens=12, temperature=0)
    pieces = []
    for chunk in client.chat.completions.create(model=models[0], messages=messages, max_tokens=12, temperature=0, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    completion = client.completions.create(model=models[0], prompt="SELECT name FROM", max_tokens=8, temperature=0)
    try:
        client.chat.completions.create(model=models[0], messages=messages, max_tokens=10**9)
        bad_request_status = None
    except openai.BadRequestError as error:
        bad_request_status = error.status_code
    print(json.dumps({
        "models": models,
        "chat": chat.choices[0].message.content,
        "finish_reason": chat.choices[0].finish_reason,
        "completion_tokens": chat.usage.completion_tokens,
        "streamed": "".join(pieces),
        "chunks": len(pieces),
        "completion": completion.choices[0].text,
        "bad_request_status": bad_request_status,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
