// The ElasticZO trainer: one call per minibatch, the whole step in C++ with the GIL released. The trainer's state
// is read and changed under its model's lock, which step() holds throughout (README, "Threads").
#include <pybind11/stl.h>

#include "arrays.h"
#include "ints.h"
#include "locks.h"
#include "register.h"
#include "int8/rules.h"
#include "train/elasticzo.h"

namespace py = pybind11;

namespace ez::py_bind {

void register_train(py::module_& m) {
  m.def("default_config", [] {
    const ElasticZOConfig c;
    py::dict d;
    d["eps"] = c.eps;
    d["lr_zo"] = c.lr_zo;
    d["lr_bp"] = c.lr_bp;
    d["grad_clip"] = c.grad_clip;
    d["clean_bp_pass"] = c.clean_bp_pass;
    d["optimizer"] = c.optimizer == OptimizerKind::adam ? "adam" : "sgd";
    d["seed"] = c.seed;
    d["zo_range"] = c.int8_zo.range;
    d["zo_p_zero"] = c.int8_zo.p_zero;
    d["zo_update_bits"] = c.int8_zo.update_bits;
    d["log2_frac_bits"] = c.int8_zo.log2_frac_bits;
    d["rounding"] = rounding_schemes(c.rounding);
    return d;
  }, "The trainer's default hyperparameters (ElasticZOConfig), the one place they are written.");
  py::class_<ElasticZO>(m, "ElasticZO")
      .def(py::init([](std::shared_ptr<Sequential> model, int zo_layers, float eps, float lr_zo, float lr_bp,
                       float grad_clip, bool clean_bp_pass, const std::string& optimizer, const py::object& seed,
                       const std::string& memory_plan, int zo_range, double zo_p_zero, int zo_update_bits,
                       bool integer_sign, int log2_frac_bits, const std::map<std::string, std::string>& rounding) {
             const MemoryPolicy policy = parse_memory_policy(memory_plan);
             ElasticZOConfig c;
             c.zo_layers = zo_layers;
             c.eps = eps;
             c.lr_zo = lr_zo;
             c.lr_bp = lr_bp;
             c.grad_clip = grad_clip;
             c.clean_bp_pass = clean_bp_pass;
             c.optimizer = parse_optimizer(optimizer);
             c.seed = unsigned_arg(seed, "seed", 64);
             c.int8_zo = {zo_range, zo_p_zero, zo_update_bits, integer_sign, log2_frac_bits};
             c.rounding = rounding_policy(rounding);
             py::gil_scoped_release release;  // these take the model's lock; they touch no Python object
             auto trainer = std::make_unique<ElasticZO>(model, c);
             model->set_memory_policy(policy);  // the model's buffers follow its trainer's policy
             return trainer;
           }),
           // No defaults for the hyperparameters: elasticzo.ElasticZO passes every value (its defaults are
           // default_config()'s).
           py::arg("model"), py::arg("zo_layers"), py::kw_only(), py::arg("eps"), py::arg("lr_zo"), py::arg("lr_bp"),
           py::arg("grad_clip"), py::arg("clean_bp_pass"), py::arg("optimizer"), py::arg("seed"),
           py::arg("memory_plan") = "static",
           // ElasticZO-INT8's settings (used by int8 models with a ZO part): defaults from ElasticZOConfig.
           py::arg("zo_range") = ElasticZOConfig{}.int8_zo.range,
           py::arg("zo_p_zero") = ElasticZOConfig{}.int8_zo.p_zero,
           py::arg("zo_update_bits") = ElasticZOConfig{}.int8_zo.update_bits,
           py::arg("integer_sign") = ElasticZOConfig{}.int8_zo.integer_sign,
           py::arg("log2_frac_bits") = ElasticZOConfig{}.int8_zo.log2_frac_bits,
           // INT8: {tensor class: scheme}; classes not named keep NITI's first commit.
           py::arg("rounding") = std::map<std::string, std::string>{},
           py::keep_alive<1, 2>())
      .def("step", [](ElasticZO& t, const py::array& x_arr, const py::array& y_arr) {
        const Tensor x = borrow_f32(x_arr, "x");
        const Tensor y = borrow_s32(y_arr, "labels");
        StepStats st;
        {
          // Safe: the arrays are held by this frame, the trainer by the caller; step() takes the model's lock.
          py::gil_scoped_release release;
          st = t.step(x, y);
        }
        py::dict d;
        d["loss"] = st.loss;
        d["loss_plus"] = st.loss_plus;
        d["loss_minus"] = st.loss_minus;
        d["projected_grad"] = st.projected_grad;
        return d;
      }, py::arg("x"), py::arg("labels"), "One ElasticZO step on a minibatch; returns its losses.")
      .def("apply_zo_update", [](ElasticZO& t, std::uint64_t step, float coefficient) {
        py::gil_scoped_release release;  // takes the model's lock; touches no Python object
        t.apply_zo_update(step, coefficient);
      }, py::arg("step"), py::arg("coefficient"),
         "Replays step `step`'s ZO update on these weights: FP32 theta[ZO] += coefficient * z(step) (coefficient = "
         "-lr_zo * g); INT8 the ternary gradient g = coefficient in {-1, 0, +1} (zeta(step) at the current p_zero).")
      .def_property_readonly("zo_layers", [](const ElasticZO& t) { return t.config().zo_layers; })  // fixed
      .def_property_readonly("rounding", [](const ElasticZO& t) { return rounding_schemes(t.config().rounding); },
                             "INT8: the rounding scheme of each tensor class (fixed at construction).")
      .def_property_readonly("precision", [](const ElasticZO& t) { return precision_name(t.precision()); })
      .def_property("zo_p_zero", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.zo_p_zero();
      }, [](ElasticZO& t, double p) {
        const auto guard = lock_without_gil(t);
        t.set_zo_p_zero(p);
      }, "INT8 with a ZO part: the fraction of the perturbation zeroed (in [0, 1]).")
      .def_property("zo_range", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.zo_range();
      }, [](ElasticZO& t, int r) {
        const auto guard = lock_without_gil(t);
        t.set_zo_range(r);
      }, "INT8 with a ZO part: the perturbation range r, |zeta| <= r.")
      .def_property("sign_agreement", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.sign_agreement();
      }, [](ElasticZO& t, const std::pair<std::uint64_t, std::uint64_t>& v) {
        const auto guard = lock_without_gil(t);
        t.set_sign_agreement(v.first, v.second);
      }, "INT8 with the integer-only gradient: (steps whose integer sign agreed with the floating-point one, steps).")
      .def_property("sign_ties", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.sign_ties();
      }, [](ElasticZO& t, const std::pair<std::uint64_t, std::uint64_t>& v) {
        const auto guard = lock_without_gil(t);
        t.set_sign_ties(v.first, v.second);
      }, "INT8 with the integer-only gradient: (ties: steps whose integer sign was 0 while the floating-point one was "
         "not, undecided: steps whose integer sign was 0), of the steps sign_agreement counts.")
      .def_property("gradient_bits", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.gradient_bits();
      }, [](ElasticZO& t, int mu) {
        const auto guard = lock_without_gil(t);
        t.set_gradient_bits(mu);
      }, "INT8: NITI's gradient bit-width mu, the learning rate of its weight update (in [0, 7]).")
      .def_property_readonly("lr_zo", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.config().lr_zo;
      })
      .def_property_readonly("lr_bp", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.config().lr_bp;
      })
      .def("set_learning_rates", [](ElasticZO& t, float lr_zo, float lr_bp) {
        const auto guard = lock_without_gil(t);
        t.set_learning_rates(lr_zo, lr_bp);
      }, py::arg("lr_zo"), py::arg("lr_bp"))
      .def_property("steps_done", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        return t.steps_done();
      }, [](ElasticZO& t, std::uint64_t n) {
        const auto guard = lock_without_gil(t);
        t.set_steps_done(n);
      }, "Steps taken; the step number keys each perturbation, so resuming sets it back.")
      .def("times", [](const ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        py::dict d;
        for (int p = 0; p < static_cast<int>(Phase::count); ++p)
          d[phase_name(static_cast<Phase>(p))] = t.times().get(static_cast<Phase>(p));
        return d;
      }, "Seconds spent per phase since the last clear_times().")
      .def("clear_times", [](ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        t.clear_times();
      })
      .def("optimizer_state", [](ElasticZO& t) {
        const auto guard = lock_without_gil(t);
        py::dict d;
        Optimizer& o = t.optimizer();
        py::list m, v;
        for (const auto& x : o.first_moments()) m.append(to_numpy(x));
        for (const auto& x : o.second_moments()) v.append(to_numpy(x));
        d["steps"] = o.steps();
        d["m"] = m;
        d["v"] = v;
        return d;
      }, "Adam's moments (empty for SGD) and its step count, for checkpoints.")
      .def("load_optimizer_state", [](ElasticZO& t, std::int64_t steps, const std::vector<py::array>& m,
                                      const std::vector<py::array>& v) {
        const auto guard = lock_without_gil(t);
        Optimizer& o = t.optimizer();
        if (m.size() != o.first_moments().size() || v.size() != o.second_moments().size())
          throw py::value_error("optimizer state has " + std::to_string(m.size()) + " moments, expected " +
                                std::to_string(o.first_moments().size()) + "");
        for (std::size_t i = 0; i < m.size(); ++i) {
          copy_into(m[i], o.first_moments()[i], "m[" + std::to_string(i) + "]");
          copy_into(v[i], o.second_moments()[i], "v[" + std::to_string(i) + "]");
        }
        o.set_steps(steps);
      }, py::arg("steps"), py::arg("m"), py::arg("v"));
}

}  // namespace ez::py_bind
