// Phase names for reports.
#include "train/phase_timer.h"

namespace ez {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::forward: return "forward";
    case Phase::backward: return "backward";
    case Phase::zo_perturb: return "zo_perturb";
    case Phase::zo_update: return "zo_update";
    case Phase::loss: return "loss";
    case Phase::optimizer: return "optimizer";
    default: return "?";
  }
}

}  // namespace ez
