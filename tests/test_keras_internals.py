"""The three places that lean on private Keras/TensorFlow internals fail loudly, naming the way out, when those internals change."""

import keras
import numpy as np
import pytest
import tensorflow as tf


def test_layerwise_rates_refuse_an_optimizer_without_the_private_index_method():
    from tl_keras.models import builders

    class FutureAdam(keras.optimizers.Adam):
        _get_variable_index = None  # as if a later Keras had removed it

    with pytest.raises(NotImplementedError, match="--layer_rate_bottom=1"):
        builders._with_rate_scale(FutureAdam)
    assert builders._with_rate_scale(keras.optimizers.Adam)  # today's Keras: the scaled class is made


def test_the_hub_variable_refuses_a_keras_that_would_copy_the_module_variable(monkeypatch):
    from tl_keras.models import hub_layer

    module_variable = tf.Variable(np.ones((2, 3), np.float32))
    adopted = hub_layer._ModuleVariable(module_variable, trainable=True)
    assert adopted._value is module_variable  # today: the module's own variable, no copy
    monkeypatch.setattr(hub_layer._ModuleVariable, "_initialize", keras.Variable._initialize)  # a Keras that copies
    with pytest.raises(NotImplementedError, match="keras<3.16"):
        hub_layer._ModuleVariable(module_variable, trainable=True)


def test_seeded_epochs_refuse_a_graph_without_a_seed(monkeypatch):
    from tl_keras.data import epochs

    class GraphWithoutSeed:
        __slots__ = ()

    monkeypatch.setattr(tf.compat.v1, "get_default_graph", lambda: GraphWithoutSeed())
    with pytest.raises(NotImplementedError, match="tensorflow<2.22"):
        tf.data.Dataset.range(1).map(lambda e: epochs.seeded_shuffle(tf.data.Dataset.range(3), 3, 0, e))
