"""The paper's training methods as partition points C (SPEC §1): how many parameter layers ZO trains."""

METHODS = ("full-zo", "zo-feat-cls2", "zo-feat-cls1", "full-bp")


def zo_layers_for(method: str, num_param_layers: int) -> int:
    """C for a method name on a model with L parameter layers: Full ZO L, Cls2 L-1, Cls1 L-2, Full BP 0."""
    table = {"full-zo": 0, "zo-feat-cls2": 1, "zo-feat-cls1": 2}
    if method == "full-bp":
        return 0
    if method not in table:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)} or give zo_layers")
    c = num_param_layers - table[method]
    if c < 1:
        raise ValueError(f"{method} needs more than {table[method]} parameter layers; the model has {num_param_layers}")
    return c


def method_name(zo_layers: int, num_param_layers: int) -> str:
    """The paper's name for a partition point, or 'zo-c<C>' for the others."""
    for m in METHODS:
        try:
            if zo_layers_for(m, num_param_layers) == zo_layers:
                return m
        except ValueError:
            continue
    return f"zo-c{zo_layers}"
