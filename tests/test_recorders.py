"""Tests of pointdistiller_mm.recorders: hooks, indexing, removal, errors."""
import gc
import weakref

import pytest
import torch
import torch.nn as nn

from pointdistiller_mm.recorders import (ModuleOutputRecorder,
                                         ModulePathError, RecorderManager,
                                         RecordIndexError, build_recorder,
                                         normalize_index, select)
from pointdistiller_mm.registry import RECORDERS


class SparseLike:
    """An object with spconv SparseConvTensor's public fields."""

    def __init__(self, features: torch.Tensor, indices: torch.Tensor):
        self.features = features
        self.indices = indices


class Scale(nn.Module):

    def __init__(self, factor: float):
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x):
        return x * self.factor


class Head(nn.Module):
    """Returns CenterHead-like nested output: tuple(list[dict])."""

    def forward(self, x):
        return ([dict(heatmap=x + 1, reg=x + 2)], [dict(heatmap=x + 3)])


class Sparse(nn.Module):

    def forward(self, x):
        return SparseLike(features=x * 2, indices=torch.arange(x.shape[0]))


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(Scale(2.0), Scale(3.0), Scale(5.0))
        self.shared = Scale(10.0)
        self.sparse = Sparse()
        self.head = Head()

    def forward(self, x, offset=None):
        x = self.backbone(x)          # x * 30
        x = self.shared(x)            # x * 300
        x = self.shared(x)            # x * 3000
        s = self.sparse(x)            # features x * 6000
        return self.head(s.features)  # heatmap x * 6000 + 1


def hook_counts(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks)
        for m in model.modules())


X = torch.tensor([[1.0, -2.0]])


def test_output_of_nested_path():
    model = Net()
    rec = ModuleOutputRecorder('backbone.1').register(model)
    with rec:
        model(X)
    assert torch.equal(rec.data, X * 6)


def test_nested_index_tuple_list_dict():
    model = Net()
    mgr = RecorderManager(
        dict(
            heat0=dict(type='ModuleOutputRecorder', source='head',
                       index=(0, 0, 'heatmap')),
            heat1=dict(source='head', index=[1, 0, 'heatmap']),
            reg=dict(source='head', index=(0, -1, 'reg'))),
        model=model)
    with mgr:
        model(X)
    assert torch.equal(mgr.get('heat0'), X * 6000 + 1)
    assert torch.equal(mgr.get('heat1'), X * 6000 + 3)
    assert torch.equal(mgr.get('reg'), X * 6000 + 2)


def test_attribute_index_on_sparse_like_object():
    model = Net()
    feats = ModuleOutputRecorder('sparse', index='features').register(model)
    inds = ModuleOutputRecorder('sparse', index=['indices']).register(model)
    with feats, inds:
        model(X)
    assert torch.equal(feats.data, X * 6000)
    assert torch.equal(inds.data, torch.tensor([0]))


def test_attribute_index_on_spconv_tensor():
    spconv = pytest.importorskip('spconv.pytorch')
    features = torch.arange(6.0).reshape(3, 2)
    indices = torch.tensor([[0, 0, 0, 1], [0, 1, 0, 0], [0, 2, 1, 0]],
                           dtype=torch.int32)
    st = spconv.SparseConvTensor(features, indices, [3, 2, 2], 1)
    assert torch.equal(select((st, ), (0, 'features')), features)
    assert torch.equal(select(st, 'indices'), indices)


def test_index_error_names_step_and_object():
    with pytest.raises(RecordIndexError) as err:
        select(([dict(heatmap=1)], ), (0, 0, 'hetmap'))
    msg = str(err.value)
    assert "step 2 (key 'hetmap')" in msg
    assert "['heatmap']" in msg
    with pytest.raises(RecordIndexError, match='tuple of length 1'):
        select((1, ), 3)
    with pytest.raises(RecordIndexError, match=r"attributes \['features'"):
        select(SparseLike(X, X), 'feature')


def test_index_error_inside_forward_names_recorder():
    model = Net()
    rec = ModuleOutputRecorder('head', index=(5, ), name='teacher_head')
    rec.register(model)
    with rec, pytest.raises(RecordIndexError,
                            match="recorder 'teacher_head' on 'head'"):
        model(X)


def test_normalize_index_rejects_bad_keys():
    assert normalize_index(None) == ()
    assert normalize_index(3) == (3, )
    assert normalize_index(['a', 1]) == ('a', 1)
    with pytest.raises(TypeError, match='int or str'):
        normalize_index((0, 1.5))
    with pytest.raises(TypeError, match='int or str'):
        normalize_index(True)


def test_keep_last_vs_keep_all_for_shared_module():
    model = Net()
    last = ModuleOutputRecorder('shared').register(model)
    every = ModuleOutputRecorder('shared', keep_all=True).register(model)
    with last, every:
        model(X)
    assert torch.equal(last.data, X * 3000)
    assert last.num_calls == 1
    assert every.num_calls == 2
    assert torch.equal(every.data[0], X * 300)
    assert torch.equal(every.get(0), X * 300)
    assert torch.equal(every.get(-1), X * 3000)
    with pytest.raises(IndexError, match='call 2 requested, 2 recorded'):
        every.get(2)


def test_window_resets_and_nothing_recorded_outside():
    model = Net()
    rec = ModuleOutputRecorder('shared', keep_all=True).register(model)
    model(X)  # outside a window: not recorded
    with pytest.raises(RuntimeError, match='nothing was recorded'):
        rec.data
    with rec:
        model(X)
    with rec:  # a new window drops the previous calls
        model(2 * X)
    assert rec.num_calls == 2
    assert torch.equal(rec.get(0), 2 * X * 300)
    rec.reset()
    assert rec.num_calls == 0


def test_record_input_positional_and_keyword():
    model = Net()
    pos = ModuleOutputRecorder('head', record='input', index=0)
    whole = ModuleOutputRecorder('', record='input')
    kw = ModuleOutputRecorder('', record='input', index='offset')
    for rec in (pos, whole, kw):
        rec.register(model)
    with pos, whole, kw:
        model(X, offset=torch.ones(1))
    assert torch.equal(pos.data, X * 6000)
    assert isinstance(whole.data, tuple) and torch.equal(whole.data[0], X)
    assert torch.equal(kw.data, torch.ones(1))
    with kw, pytest.raises(RecordIndexError, match="'offset' was not passed"):
        model(X)


def test_gradients_flow_and_no_grad_teacher():
    model = Net()
    rec = ModuleOutputRecorder('backbone.0').register(model)
    with rec:
        with torch.no_grad():
            model(X)
    assert not rec.data.requires_grad
    with rec:
        model(X)
    feat = rec.data
    assert feat.requires_grad
    feat.sum().backward()  # d(sum(x * a))/da = sum(x) = -1
    assert model.backbone[0].factor.grad.item() == pytest.approx(-1.0)
    assert model.backbone[1].factor.grad is None


def test_hook_does_not_change_output():
    model = Net()
    ref = model(X)
    mgr = RecorderManager(
        dict(a=dict(source='head', index=(0, 0, 'heatmap')),
             b=dict(source='sparse', index='features')), model)
    with mgr:
        out = model(X)
    assert torch.equal(out[0][0]['heatmap'], ref[0][0]['heatmap'])


def test_remove_restores_hook_count_and_drops_references():
    model = Net()
    before = hook_counts(model)
    assert before == 0
    mgr = RecorderManager(
        dict(
            a=dict(source='backbone.2'),
            b=dict(source='head', record='input', index=0),
            c=dict(source='shared', keep_all=True)), model)
    assert hook_counts(model) == 3
    assert len(model.backbone[2]._forward_hooks) == 1
    assert len(model.head._forward_pre_hooks) == 1
    with mgr:
        model(X)
    data_ref = weakref.ref(mgr.get('a'))
    mgr.remove()
    assert hook_counts(model) == 0
    assert not mgr.registered
    mgr.remove()  # idempotent
    model_ref = weakref.ref(model)
    del model
    gc.collect()
    assert model_ref() is None
    assert data_ref() is None
    with pytest.raises(RuntimeError, match='not registered'):
        mgr['a'].data


def test_register_twice_raises_and_reregister_after_remove():
    model = Net()
    rec = ModuleOutputRecorder('shared').register(model)
    with pytest.raises(RuntimeError, match='already registered'):
        rec.register(model)
    rec.remove()
    rec.register(model)
    assert hook_counts(model) == 1


def test_wrong_path_lists_close_matches():
    model = Net()
    with pytest.raises(ModulePathError) as err:
        ModuleOutputRecorder('backbone.7').register(model)
    msg = str(err.value)
    assert "module path 'backbone.7' does not exist in Net." in msg
    # difflib ranks equal scores in reverse string order
    assert ('Closest module paths: backbone.2, backbone.1, backbone.0, '
            'backbone.') in msg
    assert ("The deepest existing prefix is 'backbone' (Sequential); its "
            'children: backbone.0, backbone.1, backbone.2.') in msg


def test_wrong_path_suffix_match_and_root_children():
    wrapper = nn.Module()
    wrapper.student = Net()
    with pytest.raises(ModulePathError) as err:
        ModuleOutputRecorder('sparse').register(wrapper)
    msg = str(err.value)
    assert 'Closest module paths: student.sparse' in msg
    assert ('The deepest existing prefix is the model root (Module); its '
            'children: student.') in msg


def test_manager_fails_at_build_before_attaching_any_hook():
    model = Net()
    cfgs = dict(
        ok=dict(type='ModuleOutputRecorder', source='head'),
        bad=dict(type='ModuleOutputRecorder', source='backbon.0'),
        worse=dict(type='ModuleOutputRecorder', source='heads'))
    with pytest.raises(ModulePathError) as err:
        RecorderManager(cfgs, model=model)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        "recorder 'bad': module path 'backbon.0' does not exist")
    assert 'Closest module paths: backbone.0' in lines[0]
    assert lines[1].startswith("recorder 'worse'")
    assert 'Closest module paths: head' in lines[1]
    assert hook_counts(model) == 0


def test_build_from_registry_and_errors():
    assert RECORDERS.get('ModuleOutputRecorder') is ModuleOutputRecorder
    rec = build_recorder(dict(source='head', index=[0, 0]), name='x')
    assert isinstance(rec, ModuleOutputRecorder)
    assert rec.name == 'x' and rec.index == (0, 0)
    assert build_recorder(rec) is rec
    with pytest.raises(KeyError, match='unknown recorder type'):
        build_recorder(dict(type='NoSuchRecorder', source='head'))
    with pytest.raises(ValueError, match='record must be one of'):
        ModuleOutputRecorder('head', record='grad')
    mgr = RecorderManager(dict(a=dict(source='head')))
    with pytest.raises(KeyError, match=r"no recorder named 'b'; recorders: "
                       r"\['a'\]"):
        mgr['b']
    assert list(mgr) == ['a'] and 'a' in mgr and len(mgr) == 1
