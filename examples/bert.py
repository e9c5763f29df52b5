"""A small BERT-style encoder in numpy, trained with Adam; each step one compiled graph.

    python examples/bert.py

The model: token embeddings (vocabulary 1000, width 256) plus position embeddings,
layer norm, two encoder layers (4-head self-attention, then a feed-forward block of
width 1024 with GELU; each block residual and followed by layer norm, as in BERT), and
a classifier on the first token's vector ([CLS]) into 2 classes. Its parameters are a
dict of numpy arrays; the token lookup is `tok_emb[tokens]` with the table passed as
an argument, so it gets a gradient like any weight.

One compiled function does a whole training step: the loss, its gradient with respect
to every parameter (`graphc.value_and_grad`), and the Adam update written in numpy.
The example trains on a small random batch (8 sequences of 32 tokens, random labels,
which the model learns by heart: the loss falls), and checks the losses of every step
and the gradients of the first step against the same model built from torch modules
(nn.Embedding, nn.TransformerEncoderLayer, nn.Linear) with the same weights, trained
by torch.optim.Adam. Prints the loss curve and the time per step, compiled against
the same step in torch eager (and the numpy forward alone).
"""
from __future__ import annotations

import math

import numpy as np

import graphc
from graphc import nn
from _common import (BETA1, BETA2, EPS, LEARNING_RATE, adam, bias_corrections,
                     check_against_reference, print_losses, print_times, seconds_per_call,
                     reference_run, train_with_adam)

VOCAB, WIDTH, HEADS, FFN, LAYERS, CLASSES = 1000, 256, 4, 1024, 2, 2
BATCH, SEQ = 8, 32
STEPS = 10


def init_params(rng, vocab=VOCAB, width=WIDTH, ffn=FFN, seq=SEQ) -> dict:
    """BERT's initialisation: weights normal with std 0.02, biases 0, layer norms 1 and 0.

    One flat dict, named like a state dict (`layer0.wq`); linear weights in torch's
    (out, in) layout. The model's code takes its sizes from these arrays' shapes.
    """
    def normal(*shape):
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    def zeros(n):
        return np.zeros(n, np.float32)

    def ones(n):
        return np.ones(n, np.float32)

    params = {"tok_emb": normal(vocab, width), "pos_emb": normal(seq, width),
              "emb_ln_w": ones(width), "emb_ln_b": zeros(width)}
    for i in range(LAYERS):
        layer = {"wq": normal(width, width), "bq": zeros(width),
                 "wk": normal(width, width), "bk": zeros(width),
                 "wv": normal(width, width), "bv": zeros(width),
                 "wo": normal(width, width), "bo": zeros(width),
                 "ln1_w": ones(width), "ln1_b": zeros(width),
                 "w1": normal(ffn, width), "b1": zeros(ffn),
                 "w2": normal(width, ffn), "b2": zeros(width),
                 "ln2_w": ones(width), "ln2_b": zeros(width)}
        params.update({f"layer{i}.{name}": value for name, value in layer.items()})
    params["head_w"], params["head_b"] = normal(CLASSES, width), zeros(CLASSES)
    return params


def layer_params(params: dict, i: int) -> dict:
    """The parameters of encoder layer i, by their short names (`wq`, `ln1_w`, ...)."""
    prefix = f"layer{i}."
    return {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}


def self_attention(p: dict, x):
    batch, seq, width = x.shape
    head = width // HEADS

    def split_heads(t):  # (batch, seq, width) -> (batch, heads, seq, head)
        return t.reshape(batch, seq, HEADS, head).transpose(0, 2, 1, 3)

    q = split_heads(nn.linear(x, p["wq"], p["bq"]))
    k = split_heads(nn.linear(x, p["wk"], p["bk"]))
    v = split_heads(nn.linear(x, p["wv"], p["bv"]))
    # math.sqrt, a Python float: np.sqrt(64) would be a float64 numpy scalar, which
    # numpy 2 lets turn the float32 scores into float64.
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head)
    heads = nn.softmax(scores, axis=-1) @ v
    merged = heads.transpose(0, 2, 1, 3).reshape(batch, seq, width)
    return nn.linear(merged, p["wo"], p["bo"])


def encoder_layer(p: dict, x):
    """BERT's layer: attention and feed-forward, each residual, then layer norm (post-LN).
    GELU in its tanh form, as in the original BERT code."""
    x = nn.layer_norm(x + self_attention(p, x), p["ln1_w"], p["ln1_b"])
    h = nn.gelu(nn.linear(x, p["w1"], p["b1"]), approximate="tanh")
    return nn.layer_norm(x + nn.linear(h, p["w2"], p["b2"]), p["ln2_w"], p["ln2_b"])


def logits_fn(params: dict, tokens):
    x = params["tok_emb"][tokens] + params["pos_emb"]   # (batch, seq, width)
    x = nn.layer_norm(x, params["emb_ln_w"], params["emb_ln_b"])
    for i in range(LAYERS):                             # unrolled while tracing
        x = encoder_layer(layer_params(params, i), x)
    return nn.linear(x[:, 0], params["head_w"], params["head_b"])


def loss_fn(params: dict, tokens, labels):
    return nn.cross_entropy(logits_fn(params, tokens), labels)


@graphc.compile
def train_step(params, m, v, tokens, labels, bias_correction1, bias_correction2):
    """Forward, backward and Adam update as one graph. The gradients are returned too,
    for the check against torch."""
    loss, grads = graphc.value_and_grad(loss_fn)(params, tokens, labels)
    params, m, v = adam(params, grads, m, v, bias_correction1, bias_correction2)
    return loss, grads, params, m, v


def train(params, tokens, labels, steps):
    return train_with_adam(train_step, params, (tokens, labels), steps)


# --- the same model in torch, for the check ----------------------------------------------

def torch_state(tree: dict) -> dict:
    """Our parameters (or gradients) under the names of TorchBert's parameters."""
    out = {"tok.weight": tree["tok_emb"], "pos.weight": tree["pos_emb"],
           "emb_ln.weight": tree["emb_ln_w"], "emb_ln.bias": tree["emb_ln_b"],
           "head.weight": tree["head_w"], "head.bias": tree["head_b"]}
    for i in range(LAYERS):
        p, name = layer_params(tree, i), f"layers.{i}."
        # torch's MultiheadAttention keeps q, k, v projections in one (3 width, width)
        out[name + "self_attn.in_proj_weight"] = np.concatenate([p["wq"], p["wk"], p["wv"]])
        out[name + "self_attn.in_proj_bias"] = np.concatenate([p["bq"], p["bk"], p["bv"]])
        out[name + "self_attn.out_proj.weight"] = p["wo"]
        out[name + "self_attn.out_proj.bias"] = p["bo"]
        for ours, theirs in (("w1", "linear1.weight"), ("b1", "linear1.bias"),
                             ("w2", "linear2.weight"), ("b2", "linear2.bias"),
                             ("ln1_w", "norm1.weight"), ("ln1_b", "norm1.bias"),
                             ("ln2_w", "norm2.weight"), ("ln2_b", "norm2.bias")):
            out[name + theirs] = p[ours]
    return out


def torch_model(params: dict):
    """TorchBert with our weights (and the sizes of our weights); built here so that
    torch is imported only if used."""
    import torch
    from torch import nn as tnn
    vocab, width = params["tok_emb"].shape
    seq, ffn = params["pos_emb"].shape[0], params["layer0.w1"].shape[0]

    class TorchBert(tnn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = tnn.Embedding(vocab, width), tnn.Embedding(seq, width)
            self.emb_ln = tnn.LayerNorm(width)
            self.layers = tnn.ModuleList(
                tnn.TransformerEncoderLayer(
                    width, HEADS, ffn, dropout=0.0, batch_first=True,
                    activation=lambda x: tnn.functional.gelu(x, approximate="tanh"))
                for _ in range(LAYERS))
            self.head = tnn.Linear(width, CLASSES)

        def forward(self, tokens):
            x = self.emb_ln(self.tok(tokens) + self.pos.weight)
            for layer in self.layers:
                x = layer(x)
            return self.head(x[:, 0])

    model = TorchBert()
    weights = {k: torch.from_numpy(np.ascontiguousarray(w))
               for k, w in torch_state(params).items()}
    model.load_state_dict(weights, strict=True)
    return model


class TorchReference:
    """TorchBert trained by torch.optim.Adam with the same hyperparameters."""

    def __init__(self, params, tokens, labels):
        import torch
        self.torch = torch
        self.model = torch_model(params)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE,
                                          betas=(BETA1, BETA2), eps=EPS)
        self.tokens, self.labels = torch.from_numpy(tokens), torch.from_numpy(labels)

    def step(self) -> float:
        self.optimizer.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.model(self.tokens), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def grads(self) -> dict:
        return {k: p.grad.numpy().copy() for k, p in self.model.named_parameters()}


def main(steps: int | None = None, batch=BATCH, seq=SEQ, width=WIDTH, ffn=FFN,
         vocab=VOCAB) -> dict:
    """Train and check; the sizes are parameters so that a test can run a small model."""
    steps = STEPS if steps is None else steps
    rng = np.random.default_rng(0)
    params = init_params(rng, vocab, width, ffn, seq)
    tokens = rng.integers(0, vocab, (batch, seq))
    labels = rng.integers(0, CLASSES, batch)

    final, losses, grads = train(params, tokens, labels, steps)
    if losses[-1] >= losses[0]:
        raise AssertionError(f"the loss did not fall: {losses}")

    try:
        reference = TorchReference(params, tokens, labels)
    except ImportError:
        print_losses({"loss (graphc)": losses})
        print("torch is not installed: no check against it")
        return {"losses": losses, "params": final}
    ref_losses, ref_grads = reference_run(reference, steps)
    print_losses({"loss (graphc)": losses, "loss (torch)": ref_losses})

    # float32, summed in other orders than torch's: the gradients agree to about 1e-6
    # of each array's largest entry, the losses to about 1e-6; 1e-4 leaves room.
    ours = torch_state(grads)
    check_against_reference(ours, ref_grads, losses, ref_losses, rtol=1e-4)

    m = {k: np.zeros_like(p) for k, p in params.items()}
    compiled = seconds_per_call(train_step, params, m, m, tokens, labels,
                                *bias_corrections(1))
    times = {"eager: torch forward + backward + Adam step": seconds_per_call(reference.step),
             "eager: numpy loss_fn, forward only, no gradients": seconds_per_call(
                 loss_fn, params, tokens, labels)}
    print_times(compiled, times)
    return {"losses": losses, "reference_losses": ref_losses, "params": final,
            "grads": ours, "reference_grads": ref_grads,
            "seconds_per_step": {"compiled": compiled, **times}}


if __name__ == "__main__":
    main()
