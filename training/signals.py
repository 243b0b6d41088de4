"""How a training run reaches data and code it must not know (training knows nothing of employees).

- ``training_data_requested(run)``: receivers return a training.data.LabelledChips of faces they
  may train on (identity answers with consenting employees' chips and verified captures).
- ``candidate_accepted(version, run)``: the gate accepted ``version``; receivers make it the one
  search uses (identity re-embeds every template in the background, then switches).
"""

from django.dispatch import Signal

training_data_requested = Signal()
candidate_accepted = Signal()
