"""frontend/torch_capture.py on the issue's models: the captured graph, run by the
reference interpreter, gives eager torch's outputs (and BatchNorm's new running
statistics), and graphc's reverse mode on it gives torch.autograd's parameter
gradients. float64 throughout: the two sides differ by rounding only (see
test_aten_ops.py for the tolerance)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.frontend.torch_capture import capture_fx, capture_module  # noqa: E402
from graphc.passes.autodiff import backward  # noqa: E402

nn, F = torch.nn, torch.nn.functional
RTOL, ATOL = 1e-10, 1e-12


def _feeds(cap, module, args, kwargs, seed=1):
    state = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    flat = [a for a in torch.utils._pytree.tree_leaves((args, kwargs))
            if isinstance(a, torch.Tensor)]
    table = {"param": state.__getitem__, "buffer": state.__getitem__,
             "arg": flat.__getitem__, "seed": lambda _: torch.tensor(seed)}
    return [table[kind](what).detach().numpy() for kind, what in cap.input_kinds]


def check_model(module, args, kwargs=None, grad=True):
    kwargs = kwargs or {}
    module = module.double()
    cap = capture_module(module, args, kwargs)
    feeds = _feeds(cap, module, args, kwargs)
    out = graphc.interpret(cap.graph, *feeds)
    out = out if isinstance(out, tuple) else (out,)
    got = cap.output_spec.rebuild([torch.from_numpy(np.array(o)) for o in out[:cap.n_outputs]])
    before = {n: b.clone() for n, b in module.named_buffers()}
    want = module(*args, **kwargs)
    assert type(got) is type(want)
    for g, w in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL)
    new = dict(zip(cap.mutated_buffers, out[cap.n_outputs:]))
    for name, buf in module.named_buffers():
        if name in new:  # the graph's new value is what eager wrote
            torch.testing.assert_close(torch.from_numpy(np.array(new[name])), buf)
        else:
            assert torch.equal(before[name], buf)
    if grad:
        _check_grads(module, cap, feeds, want)
    return cap


def _check_grads(module, cap, feeds, loss):
    loss = loss if isinstance(loss, torch.Tensor) else loss.loss
    params = dict(module.named_parameters())
    wrt = [i for i, (kind, _) in enumerate(cap.input_kinds) if kind == "param"]
    got = graphc.interpret(backward(cap.graph, wrt), *feeds)[len(cap.graph.outputs):]
    want = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    for i, g, w in zip(wrt, got, want):
        name = cap.input_kinds[i][1]
        w = torch.zeros_like(params[name]) if w is None else w
        torch.testing.assert_close(torch.from_numpy(np.array(g)), w, rtol=RTOL, atol=ATOL,
                                   msg=lambda m: f"{name}: {m}")


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x, y):
        return F.mse_loss(self.b(torch.relu(self.a(x))), y)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(64, 10)

    def forward(self, x, y):
        h = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return F.cross_entropy(self.fc(torch.flatten(h, 1)), y)


class LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.out = nn.LSTM(4, 6, num_layers=2, batch_first=True), nn.Linear(6, 3)

    def forward(self, x, y):
        seq, _ = self.lstm(x)
        return F.cross_entropy(self.out(seq[:, -1]), y)


class Encoder(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=dropout, batch_first=True)

    def forward(self, x):
        return self.layer(x).pow(2).mean()


def test_net_cnn_lstm():
    torch.manual_seed(0)
    check_model(Net(), (_x(3, 4), _x(3, 2, seed=1)))
    check_model(CNN(), (_x(2, 1, 8, 8), torch.tensor([1, 3])))
    cap = check_model(LSTM(), (_x(2, 5, 4), torch.tensor([1, 2])))
    assert not any("mkldnn" in n.op for n in cap.graph.nodes)


def test_transformer_encoder_layer_train_and_eval():
    torch.manual_seed(0)
    enc = Encoder()
    check_model(enc, (_x(2, 5, 8),))
    check_model(enc.eval(), (_x(2, 5, 8),), grad=False)


def test_dropout_draws_from_a_seed_input():
    pytest.importorskip("graphc.ops.random")
    torch.manual_seed(0)
    module = Encoder(dropout=0.1).double()
    cap = capture_module(module, (_x(2, 5, 8),), {})
    assert cap.input_kinds[-1] == ("seed", None)
    feeds = _feeds(cap, module, (_x(2, 5, 8),), {})
    a = graphc.interpret(cap.graph, *feeds[:-1], np.int64(3))
    b = graphc.interpret(cap.graph, *feeds[:-1], np.int64(4))
    assert np.isfinite(a) and a != b


def test_batch_norm_train_writes_running_stats_and_eval_reads_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(48, 1))
    wrapped = nn.Sequential(model)
    cap = check_model(wrapped, (_x(4, 1, 6, 6),), grad=False)
    assert cap.mutated_buffers == ["0.1.running_mean", "0.1.running_var",
                                   "0.1.num_batches_tracked"]
    check_model(wrapped.eval(), (_x(4, 1, 6, 6),), grad=False)


def test_bert_for_sequence_classification():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=32, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0  # padding: the masking code must not ask the tensor for a bool
    check_model(model, (), dict(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1])))


def test_capture_fx_on_dynamo_graph():
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(capture_fx(gm, example_inputs))
        return gm.forward

    torch._dynamo.reset()
    net = Net().double()
    x, y = _x(3, 4), _x(3, 2, seed=1)
    want = net(x, y)
    got = torch.compile(net, backend=backend)(x, y)
    torch.testing.assert_close(got, want)
    (cap,) = graphs
    assert all(kind == "arg" for kind, _ in cap.input_kinds)
    # Dynamo lifts parameters to graph inputs; feed its example inputs' order
    assert cap.n_outputs >= 1
    loc = {str(n.loc) for n in cap.graph.nodes if n.loc is not None}
    assert any("test_capture.py" in s for s in loc), loc


def test_node_locations_name_the_users_line():
    cap = capture_module(Net().double(), (_x(3, 4), _x(3, 2)), {})
    lines = {n.loc.source_line() for n in cap.graph.nodes if n.loc is not None}
    assert "return F.mse_loss(self.b(torch.relu(self.a(x))), y)" in lines
