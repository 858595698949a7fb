"""musicvae_xai.serving.signatures: the contract as data, metadata summaries, client-side input checks."""

import numpy as np
import pytest

from musicvae_xai.serving import signatures as sigs


def test_contract_shapes_for_both_kinds_of_model():
    plain = sigs.expected_signatures(8, 4, 34, needs_controls=False)
    assert set(plain) == set(sigs.SIGNATURES) | {sigs.SERVING_DEFAULT}
    assert plain["decode"]["inputs"] == {"z": ("float32", (-1, 8))}
    assert plain["traverse"]["inputs"]["control"] == ("int32", ())
    assert plain["traverse"]["outputs"]["attributes"] == ("float32", (-1, -1, 4))
    assert plain["serving_default"] == plain["reconstruct"]
    ctrl = sigs.expected_signatures(8, 2, 34, needs_controls=True)
    assert ctrl["decode"]["inputs"] == {"z": ("float32", (-1, 8)), "controls": ("float32", (-1, 2))}
    assert ctrl["sample"]["inputs"] == {"z": ("float32", (-1, 8))}  # sample never needs controls


def test_describe():
    assert sigs.describe("int32", (-1, 24)) == "int32 [B, 24]"
    assert sigs.describe("int32", ()) == "int32 scalar"
    assert sigs.describe("float32", (-1, -1, 4)) == "float32 [B, N, 4]"
    assert sigs.describe("float32", None) == "float32 of any shape"
    assert sigs.describe("float32", (-1,), "values") == "float32 [S]"


SIGNATURE_DEF_JSON = {"signature_def": {
    "__saved_model_init_op": {"outputs": {"__saved_model_init_op": {"name": "NoOp"}}},
    "traverse": {
        "inputs": {
            "tokens": {"dtype": "DT_INT32", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "24"}]},
                       "name": "traverse_tokens:0"},
            "control": {"dtype": "DT_INT32", "tensor_shape": {}, "name": "traverse_control:0"},
            "values": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}],
                                                             "unknown_rank": False}},
        },
        "outputs": {"tokens": {"dtype": "DT_INT32", "tensor_shape": {"unknown_rank": True}}},
        "method_name": "tensorflow/serving/predict",
    }}}


def test_summary_of_signature_def_json():
    summary = sigs.summarize_signature_defs(SIGNATURE_DEF_JSON)
    assert list(summary) == ["traverse"]  # TensorFlow's internal init op is not a signature
    t = summary["traverse"]
    assert t["inputs"] == {"control": {"dtype": "int32", "shape": ()},
                           "tokens": {"dtype": "int32", "shape": (-1, 24)},
                           "values": {"dtype": "float32", "shape": (-1,)}}
    assert t["outputs"]["tokens"] == {"dtype": "int32", "shape": None}
    assert t["method_name"] == sigs.PREDICT_METHOD
    # The map itself (without the outer field) reads the same.
    assert sigs.summarize_signature_defs(SIGNATURE_DEF_JSON["signature_def"]) == summary


def test_check_inputs_casts_and_refuses_with_what_was_expected():
    spec = sigs.summarize_signature_defs(SIGNATURE_DEF_JSON)["traverse"]
    ok = sigs.check_inputs("traverse", spec, {"tokens": [[0] * 24], "control": 2, "values": [1, 2.5]})
    assert ok["tokens"].dtype == np.int32 and ok["control"].shape == () and ok["values"].dtype == np.float32
    bad = [
        ({"tokens": [[0] * 24], "control": 1},
         r"missing input\(s\) values; signature 'traverse' takes control \(int32 scalar\), tokens "
         r"\(int32 \[B, 24\]\), values \(float32 \[S\]\)", "values"),
        ({"tokens": [[0] * 24], "control": 1, "values": [0.0], "z": [1]}, r"unexpected input\(s\) z", "z"),
        ({"tokens": [[0.5] * 24], "control": 1, "values": [0.0]}, r"expected int32 \[B, 24\], got dtype float64",
         "tokens"),
        ({"tokens": [[True] * 24], "control": 1, "values": [0.0]}, "got dtype bool", "tokens"),
        ({"tokens": [0] * 24, "control": 1, "values": [0.0]}, r"got shape \[24\] \(rank 1\)", "tokens"),
        ({"tokens": [[0] * 23], "control": 1, "values": [0.0]}, r"expected int32 \[B, 24\], got shape \[1, 23\]",
         "tokens"),
        ({"tokens": [[0] * 24], "control": [1], "values": [0.0]}, "expected int32 scalar", "control"),
        ({"tokens": [[0] * 24], "control": 1.0, "values": [0.0]}, "expected int32 scalar, got dtype float64",
         "control"),
        ({"tokens": [[2 ** 40] * 24], "control": 1, "values": [0.0]}, "do not fit in int32", "tokens"),
        ({"tokens": [[0] * 24], "control": 1, "values": ["a"]}, "got dtype <U1", "values"),
    ]
    for inputs, pattern, name in bad:
        with pytest.raises(sigs.InputError, match=pattern) as info:
            sigs.check_inputs("traverse", spec, inputs)
        assert info.value.input_name == name
