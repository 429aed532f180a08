"""Helpers shared by tests of several packages."""

import json

import torch


def train_to_answer(path, request, answer, steps=80):
    """Fine-tune a tiny chat model on one exchange (loss on the assistant's tokens only)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmga.conversation import Conversation

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    conv = Conversation()
    conv.add_user(request)
    messages, _ = conv.to_messages(False)
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tok(prompt, add_special_tokens=False).input_ids
    answer_ids = tok(answer + tok.eos_token, add_special_tokens=False).input_ids
    ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(path)


def save_random_adapter(model, folder, base, targets, std, seed=0):
    """A LoRA adapter on ``model`` whose B matrices are seeded noise of ``std`` (so merging it changes the model),
    saved at ``folder`` with an ``llmga_base.json`` naming ``base``."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=list(targets)))
    with torch.no_grad():
        for name, weights in peft_model.named_parameters():
            if "lora_B" in name:
                weights.normal_(0, std, generator=torch.Generator().manual_seed(seed))
    peft_model.save_pretrained(folder)
    (folder / "llmga_base.json").write_text(json.dumps({"base": base}))
    return folder
