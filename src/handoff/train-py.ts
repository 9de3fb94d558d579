// train.py for `export-run --to trl`: the same script for every run, reading the run's settings
// from run_config.json beside it, so that everything run-specific is data the tests read back.
// Its module level imports only the standard library (torch, transformers, peft, trl and datasets
// are imported where they are used), so the studio's tokenization and packing below can be
// imported and checked without them (train-data.test.ts).
// Python source; keep it free of backquotes and dollar-brace pairs (it is a template literal).

export const TRAIN_PY = String.raw`#!/usr/bin/env python3
"""Train a LoRA Studio run's adapter on transformers + PEFT, with TRL's SFTTrainer where TRL is
installed (transformers' Trainer on the studio's own tokenization and packing otherwise).

Written by lora-studio export-run, the same for every run: the run's settings are in
run_config.json beside this file; README.md says where each comes from.

  pip install torch transformers peft trl datasets accelerate
  python train.py [--model ID_OR_PATH] [--output-dir DIR] [--studio-packing]
  accelerate launch --config_file accelerate/deepspeed_zero2.yaml train.py   # several GPUs
"""

import argparse
import json
import os
import re
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
# LoraConfig arguments that PEFT takes as sub-configuration objects, and their classes.
SUBCONFIGS = {"eva_config": "EvaConfig", "corda_config": "CordaConfig", "lora_ga_config": "LoraGAConfig"}
# How a chat template marks the assistant replies, which TRL's assistant_only_loss needs.
GENERATION_MARK = re.compile(r"\{%-?\s*generation\s*-?%\}")


def main():
    from peft import get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    try:
        from trl import SFTConfig, SFTTrainer
    except ImportError:
        SFTTrainer = None

    config = json.loads((HERE / "run_config.json").read_text())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=config["model"], help="Hub id or HF folder of the base model")
    parser.add_argument("--output-dir", default=str(HERE / "output"))
    parser.add_argument(
        "--studio-packing",
        action="store_true",
        help="train on the studio's own tokenization, loss mask and packing even where TRL is installed",
    )
    args = parser.parse_args()
    if args.model is None:
        parser.error("the run's base model was a local file: give its Hugging Face folder with --model PATH")
    output = Path(args.output_dir)
    training, sft, init = config["training"], config["sft"], config["init"]
    # Every process draws the same random init, so data-parallel copies start equal.
    set_seed(training["seed"])

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype="auto")
    train_set, validation_set = load_splits(config["data"])
    lora_config = lora_config_from(config["lora"])
    seq_len, batch_size = sft["max_length"], training["per_device_train_batch_size"]

    # Inits that read the weights or the data compute on this process's GPU before training.
    if init["convert_to_lora"] or init["data_batches"]:
        model.to(device())
    batches = first_batches(tokenizer, train_set, seq_len, batch_size, init["data_batches"])
    method = lora_config.init_lora_weights
    if method == "corda":
        import torch
        from peft.tuners.lora.corda import preprocess_corda

        def run_model():
            with torch.no_grad():
                for batch in batches:
                    model(**batch)

        preprocess_corda(model, lora_config, run_model=run_model)
    elif method == "lora_ga":
        from peft import preprocess_loraga

        def train_step():
            for batch in batches:
                model(**batch).loss.backward()

        preprocess_loraga(model, lora_config, train_step)
    model = get_peft_model(model, lora_config)
    if method == "eva":
        from peft import initialize_lora_eva_weights

        # Every process reads the same batches: nothing to gather from the others.
        initialize_lora_eva_weights(model, batches, gather_distributed_inputs=False)
    if init["convert_to_lora"] and int(os.environ.get("RANK", "0")) == 0:
        # A0 and B0, to turn the trained adapter into one for the original base at the end.
        model.save_pretrained(str(output / "initial-adapter"))

    if SFTTrainer is not None and not args.studio_packing and trl_can_mask(tokenizer, sft):
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(output_dir=str(output), **training, **sft),
            train_dataset=train_set,
            eval_dataset=validation_set,
            processing_class=tokenizer,
        )
    else:
        from datasets import Dataset

        def pack(rows):
            return Dataset.from_list(list(studio_sequences(rows, tokenizer, seq_len)))

        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=str(output), **training),
            train_dataset=pack(train_set),
            eval_dataset=None if validation_set is None else pack(validation_set),
            data_collator=default_data_collator,
        )
    trainer.train()
    trained = output / ("adapter-residual" if init["convert_to_lora"] else "adapter")
    trainer.save_model(str(trained))
    if init["convert_to_lora"] and trainer.is_world_process_zero():
        convert_to_lora(trained, output / "initial-adapter", output / "adapter")


def trl_can_mask(tokenizer, sft):
    """TRL trains only the assistant replies with a chat template that marks them; where the
    tokenizer's does not, the studio's own loss mask is used instead."""
    template = tokenizer.chat_template
    if not sft.get("assistant_only_loss") or GENERATION_MARK.search(json.dumps(template)):
        return True
    print(
        "train.py: the chat template does not mark the assistant replies ({% generation %}), which TRL needs "
        "to train on them alone: training on the studio's own tokenization, loss mask and packing instead"
    )
    return False


def load_splits(data):
    from datasets import load_dataset

    files = {"train": str(HERE / data["train"])}
    if data["validation"]:
        files["validation"] = str(HERE / data["validation"])
    splits = load_dataset("json", data_files=files)
    return splits["train"], splits.get("validation")


def lora_config_from(settings):
    import peft

    kwargs = dict(settings)
    for key, name in SUBCONFIGS.items():
        if key in kwargs:
            kwargs[key] = getattr(peft, name)(**kwargs[key])
    return peft.LoraConfig(**kwargs)


def device():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def first_batches(tokenizer, rows, seq_len, batch_size, count):
    """The first count batches of training sequences, in order: what the studio's data-aware inits read."""
    sequences = list(islice(studio_sequences(rows, tokenizer, seq_len), count * batch_size))
    if not sequences:
        return []
    import torch

    return [
        {key: torch.tensor([s[key] for s in sequences[i : i + batch_size]], device=device()) for key in sequences[0]}
        for i in range(0, len(sequences), batch_size)
    ]


def studio_sequences(rows, tokenizer, seq_len):
    """The studio's packing: examples back to back in one stream, cut into windows of seq_len + 1
    tokens that overlap by one, so that every token after the first is a target once; windows with
    no trained target are skipped. Labels are -100 where nothing is trained (the model shifts them)."""
    ids, trained = [], []
    for row in rows:
        more_ids, more_trained = studio_tokens(tokenizer, row)
        ids.extend(more_ids)
        trained.extend(more_trained)
        start = 0
        while len(ids) - start >= seq_len + 1:
            end = start + seq_len + 1
            window = sequence(tokenizer, ids[start:end], trained[start:end], seq_len)
            if window:
                yield window
            start += seq_len
        del ids[:start], trained[:start]
    if len(ids) > 1:
        window = sequence(tokenizer, ids, trained, seq_len)
        if window:
            yield window


def sequence(tokenizer, ids, trained, seq_len):
    labels = [-100] + [token if keep else -100 for token, keep in zip(ids[1:], trained[1:])]
    if all(label == -100 for label in labels):
        return None
    padding = seq_len + 1 - len(ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return {
        "input_ids": ids + [pad] * padding,
        "attention_mask": [1] * len(ids) + [0] * padding,
        "labels": labels + [-100] * padding,
    }


def studio_tokens(tokenizer, row):
    """An example's token ids and which of them are trained, as the studio's data.ts tokenizes it:
    text: BOS + text + EOS; prompt/completion: the prompt untrained; chat: the template's rendering,
    the assistant replies (with their end-of-turn token) trained."""
    if "messages" in row:
        return chat_tokens(tokenizer, row["messages"])
    text = row["prompt"] + row["completion"] if "prompt" in row else row["text"]
    ids = tokenizer(text)["input_ids"]
    if tokenizer.eos_token_id is not None and ids[-1:] != [tokenizer.eos_token_id]:
        ids = ids + [tokenizer.eos_token_id]
    start = common_prefix(tokenizer(row["prompt"])["input_ids"], ids) if "prompt" in row else 0
    return ids, trained_mask(tokenizer, ids, [(start, len(ids))])


def chat_tokens(tokenizer, messages):
    def render(upto, generation_prompt):
        return tokenizer.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=generation_prompt
        )

    bos = tokenizer.bos_token_id
    adds_bos = bos is not None and tokenizer("")["input_ids"][:1] == [bos]

    def encode(text):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return [bos] + ids if adds_bos and ids[:1] != [bos] else ids

    ids = encode(render(len(messages), False))
    ranges = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = common_prefix(encode(render(i, True)), ids)
        through = encode(render(i + 1, False).rstrip())
        end = common_prefix(through, ids)
        # A token straddling the reply's end carries some of the reply: it is trained too.
        ranges.append((start, max(start, end + 1 if end < len(through) else end)))
    return ids, trained_mask(tokenizer, ids, ranges)


def common_prefix(prefix, ids):
    n = 0
    while n < len(prefix) and n < len(ids) and prefix[n] == ids[n]:
        n += 1
    return n


def trained_mask(tokenizer, ids, ranges):
    trained = [any(start <= i < end for start, end in ranges) for i in range(len(ids))]
    if ids and ids[0] == tokenizer.bos_token_id:
        trained[0] = False
    return trained


def convert_to_lora(trained, initial, out):
    """The trained adapter as a plain LoRA of twice the rank for the original base:
    dW = B A - B0 A0 = [B, -B0] [A; A0], as PEFT's save_pretrained(...,
    path_initial_model_for_weight_conversion=...) writes it, but from the two saved adapters, so
    that it also works after FSDP and ZeRO."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(str(trained / "adapter_model.safetensors"))
    start = load_file(str(initial / "adapter_model.safetensors"))
    for name, tensor in weights.items():
        if ".lora_A." in name:
            weights[name] = torch.cat([tensor, start[name].to(tensor.dtype)], dim=0)
        elif ".lora_B." in name:
            weights[name] = torch.cat([tensor, -start[name].to(tensor.dtype)], dim=1)
    adapter = json.loads((trained / "adapter_config.json").read_text())
    # Twice the rank at the same scaling: alpha/r doubles alpha, alpha/sqrt(r) (rsLoRA) takes sqrt(2).
    alpha_factor = 2**0.5 if adapter.get("use_rslora") else 2
    adapter["r"] *= 2
    adapter["lora_alpha"] *= alpha_factor
    adapter["rank_pattern"] = {k: 2 * v for k, v in (adapter.get("rank_pattern") or {}).items()}
    adapter["alpha_pattern"] = {k: alpha_factor * v for k, v in (adapter.get("alpha_pattern") or {}).items()}
    adapter["init_lora_weights"] = True
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n")


if __name__ == "__main__":
    main()
`;
