"""A Keras 3 layer around a TF Hub module or a local TF2 SavedModel.

`hub.KerasLayer` is a tf_keras (Keras 2) layer and fails inside Keras 3
functional models. `keras.layers.TFSMLayer` loads a SavedModel but copies its
variables into new Keras variables that the module's functions never read, so
fine-tuning through it silently trains nothing. This layer instead wraps each
of the module's own `tf.Variable`s in a Keras variable that *is* that
variable: gradients, optimizer updates, freezing and weight saving all act on
the tensors the module computes with.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Iterator

import keras
import tensorflow as tf

from tl_keras.config.settings import HUB_PREFIXES

# BatchNorm parameters as TF Hub and Keras name them ("MobilenetV2/Conv/BatchNorm/gamma", "bn_conv1/beta", ...).
_BATCH_NORM_NAME = re.compile(r"(batch_?norm|batch_normalization|(^|[/_])bn($|[/_\d]))", re.IGNORECASE)
# Folders searched, by the module folder's name, when a saved model's handle is not on this machine (`module_search_path`).
_SEARCH_DIRS: list[Path] = []


@contextlib.contextmanager
def module_search_path(*folders: str | Path) -> Iterator[None]:
    """While open, a HubLayer whose handle is missing here looks for a module folder of the same name in `folders`.

    An export carries its Hub modules in `assets.extra/hub_modules/`; loading
    its `.keras` copy on another machine opens this around the load.
    """
    _SEARCH_DIRS[:0] = [Path(f) for f in folders]
    try:
        yield
    finally:
        del _SEARCH_DIRS[: len(folders)]


def is_batch_norm_variable(name: str) -> bool:
    """Whether a module variable is a BatchNorm parameter or statistic, by its name."""
    return bool(_BATCH_NORM_NAME.search(name))


def _resolve_handle(handle: str) -> str:
    """`handle`, or the copy of its module folder found on the search path when `handle` is a local path that is gone."""
    if handle.startswith(HUB_PREFIXES) or Path(handle).exists():
        return handle
    for folder in _SEARCH_DIRS:
        candidate = folder / Path(handle).name
        if (candidate / "saved_model.pb").is_file():
            return str(candidate)
    return handle


class _ModuleVariable(keras.Variable):
    """A Keras variable backed by an existing `tf.Variable` (no copy)."""

    def __init__(self, tf_variable: tf.Variable, trainable: bool):
        self._wrapped = tf_variable
        # Keras variable names may not contain '/'.
        name = tf_variable.name.split(":")[0].replace("/", "_")
        super().__init__(
            initializer=lambda shape, dtype: tf_variable,
            shape=tuple(tf_variable.shape),
            dtype=tf_variable.dtype.name,
            trainable=trainable,
            name=name,
        )
        if getattr(self, "_value", None) is not tf_variable:  # `_initialize` is private Keras (3.0-3.15 call it from __init__)
            raise NotImplementedError(
                f"the Hub layer adopts a module's variables through keras.Variable._initialize, which Keras {keras.__version__} "
                "no longer calls; install keras<3.16"
            )

    def _initialize(self, value):  # Keras would copy `value`; adopt the module's variable instead.
        self._value = self._wrapped


def load_hub_module(handle: str) -> Any:
    """Loads a Hub handle (URL or cache-resolved) or a local SavedModel folder."""
    import tensorflow_hub as hub  # Imported lazily: only Hub backbones need it.

    return hub.load(handle)


def _module_variables(module: Any, fn: Any) -> tuple[list[tf.Variable], set]:
    """The module's variables and the refs of the trainable ones.

    Reusable SavedModels (the TF Hub convention) list them as attributes;
    other SavedModels do not, so fall back to what the call's traced functions
    capture, trusting each variable's own `trainable` flag.
    """
    if hasattr(module, "variables"):
        variables = list(module.variables)
        trainable = list(getattr(module, "trainable_variables", []))
        return variables, {v.ref() for v in trainable}
    seen: dict = {}
    concrete = list(getattr(fn, "concrete_functions", None) or [fn])
    for function in concrete:
        for v in getattr(function, "variables", []):
            seen.setdefault(v.ref(), v)
    variables = list(seen.values())
    return variables, {v.ref() for v in variables if v.trainable}


@keras.saving.register_keras_serializable(package="tl_keras")
class HubLayer(keras.layers.Layer):
    """Calls a TF Hub module / SavedModel as a trainable, freezable Keras 3 layer.

    Args:
        handle: TF Hub URL/handle or local SavedModel folder (anything `hub.load` takes).
        output_shape: shape of one output example, e.g. (1280,); needed when the
            module cannot tell Keras its output shape symbolically.
        signature: call `module.signatures[signature]` instead of `module(...)`.
        output_key: pick this key when the module returns a dict.
        trainable: whether the module's trainable variables are trained.
        freeze_batch_norm: keep the module's BatchNorm frozen and in inference
            mode, as fine-tuning does for every other backbone: the module is
            always called with training=False (moving statistics are used and
            never updated; its dropout is off), and variables named like
            BatchNorm parameters stay untrainable when the layer is unfrozen.
            Keras 3 passes the outer model's `training` to every layer, even
            one called with `training=False` in the graph, so the layer must
            decide this itself.
    """

    def __init__(
        self,
        handle: str,
        output_shape: tuple[int, ...] | list[int] | None = None,
        signature: str = "",
        output_key: str = "",
        trainable: bool = False,
        freeze_batch_norm: bool = True,
        **kwargs,
    ):
        super().__init__(trainable=trainable, **kwargs)
        self.handle = str(handle)
        self.signature = signature or ""
        self.output_key = output_key or ""
        self.freeze_batch_norm = bool(freeze_batch_norm)
        self._declared_output_shape = tuple(output_shape) if output_shape else None
        self._module = load_hub_module(_resolve_handle(self.handle))
        if self.signature:
            if self.signature not in self._module.signatures:
                raise ValueError(
                    f"Hub module {self.handle!r} has no signature {self.signature!r}; "
                    f"available: {sorted(self._module.signatures)}"
                )
            self._fn = self._module.signatures[self.signature]
        elif callable(self._module):
            self._fn = self._module
        else:
            raise ValueError(
                f"Hub module {self.handle!r} is not callable; pass signature= one of "
                f"{sorted(self._module.signatures)}"
            )
        self._training_values = self._traced_training_values()
        all_variables, trainable_refs = _module_variables(self._module, self._fn)
        if self.freeze_batch_norm:
            trainable_refs = {ref for ref in trainable_refs if not is_batch_norm_variable(ref.deref().name)}
        # Keras tracks lists of variables assigned to layer attributes.
        self._module_trainable = [_ModuleVariable(v, True) for v in all_variables if v.ref() in trainable_refs]
        self._module_frozen = [_ModuleVariable(v, False) for v in all_variables if v.ref() not in trainable_refs]
        # Tracked as trainable (so unfreezing can reach them) but frozen now if
        # the layer is: Keras only propagates the flag on later changes.
        for variable in self._module_trainable:
            variable.trainable = self.trainable
        self.built = True

    def _traced_training_values(self) -> frozenset:
        """The `training` values the module was traced with (empty: no such argument).

        Hub modules trace `__call__` for training=True and False; many exported
        models trace only one, and calling an untraced value raises, so the
        layer falls back to the value that exists.
        """
        if self.signature:
            return frozenset()
        concrete = getattr(getattr(self._module, "__call__", None), "concrete_functions", None) or []
        values = set()
        for fn in concrete:
            args, kwargs = fn.structured_input_signature
            if "training" in kwargs:
                values.add(kwargs["training"])
            elif len(args) > 1:
                values.add(args[1])
        return frozenset(v for v in values if isinstance(v, bool))

    def call(self, inputs, training=None):
        outputs = self._select_output(self.call_module(inputs, training))
        self.add_module_losses(training)
        return outputs

    def add_module_losses(self, training=None) -> None:
        """The module's own regularization losses, while it trains (a subclass that calls the module its own way adds them too)."""
        regularization = getattr(self._module, "regularization_losses", None)
        if regularization and self.trainable and training:
            for loss_fn in regularization:
                self.add_loss(loss_fn())

    def call_module(self, inputs, training=None):
        """The module's own outputs on `inputs` (a tensor, tuple or dict), with the `training` value it was traced for."""
        if self.signature:
            return self._fn(inputs)
        if self._training_values:
            wanted = bool(training) and self.trainable and not self.freeze_batch_norm
            if wanted not in self._training_values:
                wanted = not wanted
            return self._fn(inputs, training=wanted)
        return self._fn(inputs)

    def _select_output(self, outputs):
        if isinstance(outputs, dict):
            if self.output_key:
                outputs = outputs[self.output_key]
            elif len(outputs) == 1:
                outputs = next(iter(outputs.values()))
            else:
                raise ValueError(
                    f"Hub module {self.handle!r} returns several outputs {sorted(outputs)}; "
                    "choose one with output_key."
                )
        return outputs

    def compute_output_shape(self, input_shape):
        batch = next(iter(input_shape.values()))[0] if isinstance(input_shape, dict) else input_shape[0]  # dict: a text encoder's ids
        if self._declared_output_shape is not None:
            return (batch, *self._declared_output_shape)
        probe_shape = [1 if d is None else d for d in input_shape]
        probe = tf.zeros(probe_shape, dtype=self.compute_dtype)
        out = self.call(probe, training=False)
        return (input_shape[0], *tuple(out.shape[1:]))

    def get_config(self):
        return {
            **super().get_config(),
            "handle": self.handle,
            "output_shape": list(self._declared_output_shape) if self._declared_output_shape else None,
            "signature": self.signature,
            "output_key": self.output_key,
            "freeze_batch_norm": self.freeze_batch_norm,
        }

    @property
    def module_path(self) -> Path | None:
        """The local folder the module was loaded from (a Hub download's cache folder included), if any."""
        resolved = _resolve_handle(self.handle)
        if Path(resolved).is_dir():
            return Path(resolved)
        try:
            import tensorflow_hub as hub

            return Path(hub.resolve(resolved))
        except Exception:  # noqa: BLE001 - an unresolvable handle simply has no local folder to carry
            return None
