"""One module per finding, strung together the way its notebook reads, so that no notebook holds
logic of its own: :mod:`.single` (notebook 01, with :mod:`.single_summary`, :mod:`.why` and
:mod:`.semantics`), :mod:`.cross` (02, with :mod:`.crossmodel`), :mod:`.sparsity` (03, with
:mod:`.redundancy`), :mod:`.robust_study` (04, with :mod:`.robustness`), and :mod:`.scaling`
(learning, split-seed and width curves shared by 01 and 02). Findings import every earlier stage
(images ... verdicts) and the results record (:mod:`neudep_utils.record`); nothing imports
them but the notebooks."""
