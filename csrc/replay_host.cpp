// pyrl._C.ReplayHost: the direct (pybind11) route of a CPU buffer's replay ops. It keeps
// references to the buffer's tensors (the state, its stage included, and the columns) and its
// settings, and no state of its own, so a call converts only its own inputs; it turns what a
// caller passes (tensors, numpy arrays straight from gymnasium, lists) into the tensors the op
// takes, naming the field when something does not fit. Then it releases the GIL, takes the
// buffer's mutex (which covers only the compiled work) and runs the very function the dispatcher
// runs (csrc/torch/replay.h), so both routes share every rule and every check.
//
// One lock order (DESIGN.md 15): the buffer's mutex is only ever waited for with the GIL
// released, and no thread holding it waits for the GIL (nor runs Python, nor drops the last
// reference of a Python-made tensor). Python code that must see the state unchanged for a while
// (a snapshot for save, the episode table) holds the buffer instead: a mark set under the mutex
// that every other thread's call waits on, again with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <torch/csrc/Dtype.h>
#include <torch/csrc/DynamicTypes.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>
#include <torch/csrc/utils/tensor_numpy.h>

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "torch/replay.h"
#include "torch/sequence.h"

namespace py = pybind11;

namespace pyrl {
namespace {

using Tensors = std::vector<at::Tensor>;

std::string shape_text(at::IntArrayRef sizes) { return c10::str(sizes); }

// "torch.float32", as Python users write dtypes.
std::string dtype_text(at::ScalarType type) {
  return py::str(py::handle(reinterpret_cast<PyObject*>(torch::getTHPDtype(type))))
      .cast<std::string>();
}

// Values convert to a column within their kind only: no float into an integer column.
bool castable(at::ScalarType from, at::ScalarType to) {
  if (at::isComplexType(from)) return false;
  if (at::isFloatingType(to)) return true;
  if (to == at::kBool) return from == at::kBool;
  return !at::isFloatingType(from);
}

// The buffer's mutex and its hold mark (see the top of the file). Every method is called with
// the GIL released.
class BufferLock {
 public:
  // The mutex, once no other thread holds the buffer. A wait for a hold is checked for signals
  // every 100 ms (Ctrl-C in the main thread raises there, the mutex not held).
  std::unique_lock<std::mutex> acquire() {
    const auto me = std::this_thread::get_id();
    std::unique_lock<std::mutex> lock(mutex_);
    const auto free = [&] { return depth_ == 0 || holder_ == me; };
    while (!released_.wait_for(lock, std::chrono::milliseconds(100), free)) {
      lock.unlock();
      {
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      }
      lock.lock();
    }
    return lock;
  }

  // Marks the buffer held by this thread (reentrant): other threads' calls wait until release.
  void hold() {
    auto lock = acquire();
    holder_ = std::this_thread::get_id();
    ++depth_;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    TORCH_CHECK_VALUE(depth_ > 0 && holder_ == std::this_thread::get_id(),
                      "ReplayHost.release: this thread does not hold the buffer");
    if (--depth_ == 0) released_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  std::thread::id holder_;
  int depth_ = 0;
};

class ReplayHost {
 public:
  ReplayHost(Tensors state, Tensors columns, std::vector<double> config,
             std::vector<std::string> names, int64_t obs_columns)
      : state_(std::move(state)),
        columns_(std::move(columns)),
        config_(std::move(config)),
        names_(std::move(names)),
        obs_columns_(obs_columns) {
    TORCH_CHECK_VALUE(names_.size() == columns_.size() && obs_columns_ >= 1 &&
                          obs_columns_ < static_cast<int64_t>(columns_.size()),
                      "ReplayHost: one name per column and 1 <= obs_columns < columns");
    // The settings are checked once here, against the columns (a buffer whose settings do not
    // fit them fails at creation, the slot named); every op call checks them again, cheaply.
    config_of("ReplayBuffer", config_, columns_);
    py::object numpy = py::module_::import("numpy");
    ndarray_ = numpy.attr("ndarray");
    as_tensor_ = py::module_::import("torch").attr("as_tensor");
  }

  // One step of N environments. `obs` and `next_obs` are a value, or a dict by observation
  // name; `fields` maps every other field (reward excluded) to its value.
  // Returns the pieces committed because their stage filled up: episodes committed as truncated
  // at max_episode_steps though neither flag was set (a loop that does not pass `truncated`).
  // `skip`: None, or [N] bools of the envs whose step is not stored (NEXT_STEP resets).
  int64_t add(py::handle obs, py::handle next_obs, py::handle reward, py::handle terminated,
              py::handle truncated, const py::dict& fields, py::handle skip) {
    int64_t cut = 0;
    if (add_in_place(obs, next_obs, reward, terminated, truncated, fields, skip, cut)) {
      return cut;
    }
    Tensors step, final_obs;
    const int64_t envs = observations("add", "obs", obs, -1, step);
    TORCH_CHECK_VALUE(envs >= 1,
                      "ReplayBuffer.add: obs should hold at least one environment, "
                      "got 0 rows");
    observations("add", "next_obs", next_obs, envs, final_obs);
    check_fields("add", fields);
    for (size_t i = obs_columns_; i + 1 < columns_.size(); ++i) {
      step.push_back(rows("add", names_[i], fields[names_[i].c_str()], i, envs));
    }
    step.push_back(rows("add", "reward", reward, columns_.size() - 1, envs));
    const at::Tensor term = flags("terminated", terminated, envs).ne(0).contiguous();
    const at::Tensor trunc = flags("truncated", truncated, envs).ne(0).contiguous();
    std::optional<at::Tensor> skipped;
    if (!skip.is_none()) skipped = flags("skip", skip, envs).ne(0).contiguous();
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    return replay_add_steps(state_, columns_, step, final_obs, term, trunc, config_, skipped);
  }

  // The common case read in place: every value a C-contiguous numpy array or contiguous CPU
  // tensor of its column's dtype and shape (float64 into a float32 column converted in a plain
  // loop), bool flags. No tensor is made for any of them: at a few µs per step, making six
  // would cost more than the copy. Returns false, having changed nothing, when a value does not
  // qualify; the general path then converts it or names what is wrong.
  bool add_in_place(py::handle obs, py::handle next_obs, py::handle reward, py::handle terminated,
                    py::handle truncated, const py::dict& fields, py::handle skip, int64_t& cut) {
    const size_t count = columns_.size();
    c10::SmallVector<py::handle, 8> values, finals;
    if (!gather_observations(obs, values) || !gather_observations(next_obs, finals)) return false;
    if (static_cast<int64_t>(py::len(fields)) != static_cast<int64_t>(count) - obs_columns_ - 1) {
      return false;
    }
    for (size_t i = obs_columns_; i + 1 < count; ++i) {
      PyObject* value = PyDict_GetItemString(fields.ptr(), names_[i].c_str());  // borrowed
      if (value == nullptr) return false;
      values.push_back(value);
    }
    values.push_back(reward);
    int64_t envs = -1;
    c10::SmallVector<const uint8_t*, 8> step, final_obs;
    std::vector<std::vector<float>> converted;  // per call: another thread may add meanwhile
    for (size_t i = 0; i < count; ++i) {
      step.push_back(in_place(values[i], i, envs, converted));
      if (step.back() == nullptr) return false;
    }
    for (size_t i = 0; i < static_cast<size_t>(obs_columns_); ++i) {
      final_obs.push_back(in_place(finals[i], i, envs, converted));
      if (final_obs.back() == nullptr) return false;
    }
    const bool* term = bool_flags(terminated, envs);
    const bool* trunc = bool_flags(truncated, envs);
    const bool* skipping = skip.is_none() ? nullptr : bool_flags(skip, envs);
    if (envs < 1 || term == nullptr || trunc == nullptr || (!skip.is_none() && !skipping)) {
      return false;
    }
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    cut = replay_add_rows(state_, columns_, envs, step.data(), final_obs.data(), term, trunc,
                          skipping, config_);
    return true;
  }

  // The observation values of `value` (one array, or a dict by observation name), or false.
  bool gather_observations(py::handle value, c10::SmallVector<py::handle, 8>& out) const {
    if (!py::isinstance<py::dict>(value)) {
      if (obs_columns_ != 1) return false;
      out.push_back(value);
      return true;
    }
    if (static_cast<int64_t>(PyDict_Size(value.ptr())) != obs_columns_) return false;
    for (int64_t i = 0; i < obs_columns_; ++i) {
      PyObject* item = PyDict_GetItemString(value.ptr(), names_[i].c_str());  // borrowed
      if (item == nullptr) return false;
      out.push_back(item);
    }
    return true;
  }

  // The bytes of `value` as [envs, *row] rows of column i, read in place, or nullptr. `envs`
  // is set by the first value (-1 before).
  const uint8_t* in_place(py::handle value, size_t i, int64_t& envs,
                          std::vector<std::vector<float>>& converted) const {
    const at::Tensor& column = columns_[i];
    const auto row = column.sizes().slice(1);
    const void* data = nullptr;
    at::ScalarType type;
    c10::SmallVector<int64_t, 6> shape;
    if (THPVariable_Check(value.ptr())) {
      const at::Tensor& t = THPVariable_Unpack(value.ptr());
      if (!t.device().is_cpu() || !t.is_contiguous()) return nullptr;
      data = t.const_data_ptr();
      type = t.scalar_type();
      shape.assign(t.sizes().begin(), t.sizes().end());
    } else if (py::isinstance(value, ndarray_)) {
      const auto array = py::reinterpret_borrow<py::array>(value);
      if (!(array.flags() & py::array::c_style) || !native(array)) return nullptr;
      const int num = array.dtype().num();
      if (num == py::detail::npy_api::NPY_DOUBLE_) {
        type = at::kDouble;
      } else if (num == py::detail::npy_api::NPY_FLOAT_) {
        type = at::kFloat;
      } else if (num == py::detail::npy_api::NPY_BOOL_) {
        type = at::kBool;
      } else {
        return nullptr;  // the general path knows the other dtypes
      }
      data = array.data();
      shape.assign(array.shape(), array.shape() + array.ndim());
    } else {
      return nullptr;
    }
    bool same = static_cast<int64_t>(shape.size()) == column.dim() && !shape.empty() &&
                (envs < 0 || shape[0] == envs);
    for (size_t d = 0; same && d < row.size(); ++d) same = shape[d + 1] == row[d];
    if (!same) return nullptr;
    envs = shape[0];
    if (type == column.scalar_type()) return static_cast<const uint8_t*>(data);
    if (type != at::kDouble || column.scalar_type() != at::kFloat) return nullptr;
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    const double* src = static_cast<const double*>(data);
    converted.emplace_back(src, src + numel);  // double -> float, element by element
    return reinterpret_cast<const uint8_t*>(converted.back().data());
  }

  // `value` as [envs] bools read in place (a bool array or tensor), or nullptr.
  const bool* bool_flags(py::handle value, int64_t envs) const {
    if (THPVariable_Check(value.ptr())) {
      const at::Tensor& t = THPVariable_Unpack(value.ptr());
      const bool fits = t.device().is_cpu() && t.scalar_type() == at::kBool && t.dim() == 1 &&
                        t.size(0) == envs && t.is_contiguous();
      return fits ? t.const_data_ptr<bool>() : nullptr;
    }
    if (!py::isinstance(value, ndarray_)) return nullptr;
    const auto array = py::reinterpret_borrow<py::array>(value);
    const bool fits = (array.flags() & py::array::c_style) && native(array) &&
                      array.dtype().num() == py::detail::npy_api::NPY_BOOL_ && array.ndim() == 1 &&
                      array.shape(0) == envs;
    return fits ? static_cast<const bool*>(array.data()) : nullptr;
  }

  // Whether the array's bytes are in this machine's order (numpy can hold either).
  static bool native(const py::array& array) {
    const char order = array.dtype().byteorder();
    constexpr char kLittle = '<', kBig = '>';
    return order == '=' || order == '|' ||
           order == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? kLittle : kBig);
  }

  void check_fields(const char* where, const py::dict& fields) const {
    bool complete = static_cast<int64_t>(py::len(fields)) ==
                    static_cast<int64_t>(columns_.size()) - obs_columns_ - 1;
    for (size_t i = obs_columns_; complete && i + 1 < columns_.size(); ++i) {
      complete = fields.contains(names_[i].c_str());
    }
    if (!complete) field_mismatch(where, fields);
  }

  // A whole episode: `obs` holds T + 1 rows (a value, or a dict by observation name), `reward`
  // and every other field T rows; converted under add's rule.
  void add_episode(py::handle obs, py::handle reward, const py::dict& fields, bool terminated,
                   const std::optional<at::Tensor>& td_abs) {
    constexpr const char* where = "add_episode";
    Tensors values;
    const int64_t rows = observations(where, "obs", obs, -1, values);
    TORCH_CHECK_VALUE(rows >= 2,
                      "ReplayBuffer.add_episode: an episode needs at least 1 "
                      "transition (obs with 2 rows), got obs with ",
                      rows, " rows");
    check_fields(where, fields);
    for (size_t i = obs_columns_; i + 1 < columns_.size(); ++i) {
      values.push_back(this->rows(where, names_[i], fields[names_[i].c_str()], i, rows - 1));
    }
    values.push_back(this->rows(where, "reward", reward, columns_.size() - 1, rows - 1));
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    replay_add_episode_cpu(state_, columns_, values, terminated, config_, td_abs);
  }

  // An input that is no column's value (TD errors, recurrent states) as a `dtype` tensor of
  // `shape`, under the columns' rule (castable): pyrl/replay/inputs.py calls it past its fast
  // path, so the rule lives here only.
  at::Tensor convert(const std::string& where, const std::string& name, py::handle value,
                     py::handle dtype, const std::vector<int64_t>& shape) {
    TORCH_CHECK_VALUE(THPDtype_Check(dtype.ptr()),
                      "ReplayHost.convert: dtype should be a "
                      "torch.dtype");
    const at::ScalarType type = reinterpret_cast<THPDtype*>(dtype.ptr())->scalar_type;
    at::Tensor t;
    if (THPVariable_Check(value.ptr())) {
      t = THPVariable_Unpack(value.ptr());
    } else {
      try {
        t = THPVariable_Unpack(as_tensor_(value).ptr());
      } catch (py::error_already_set& err) {
        TORCH_CHECK_VALUE(false, "ReplayBuffer.", where, ": ", name, " should be ",
                          dtype_text(type), " values of shape ", shape_text(shape), ", got ",
                          py::str(py::type::of(value).attr("__name__")).cast<std::string>(), " (",
                          err.what(), ")");
      }
    }
    if (t.scalar_type() != type) {
      TORCH_CHECK_VALUE(castable(t.scalar_type(), type), "ReplayBuffer.", where, ": ", name,
                        " should be ", dtype_text(type),
                        " (or convert to it within its kind), "
                        "got ",
                        dtype_text(t.scalar_type()));
      t = t.to(type);
    }
    TORCH_CHECK_VALUE(t.sizes() == at::IntArrayRef(shape), "ReplayBuffer.", where, ": ", name,
                      " should have shape ", shape_text(shape), ", got ", shape_text(t.sizes()));
    return t.detach();
  }

  // Stores the running episodes (ReplayBuffer.end_running_episodes); returns how many.
  int64_t end_episodes() {
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    return replay_end_running(state_, columns_, config_);
  }

  // A sample keyed by the state's seed and count of sample calls, which the op advances.
  SampleResult sample(int64_t batch_size, const std::optional<at::Tensor>& rows) {
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    return replay_sample_cpu(state_, columns_, batch_size, rows, config_);
  }

  // How ReplayBuffer.sample's batches are made (set once, by the buffer): the Batch type, the
  // key of each output in sample_output order (csrc/torch/replay.h), and the positions of the
  // outputs a batch keeps.
  void set_batch_layout(py::object batch_type, py::tuple keys, std::vector<int64_t> kept) {
    const size_t expected = 9 + columns_.size() - 1 + static_cast<size_t>(obs_columns_);
    TORCH_CHECK_VALUE(keys.size() == expected, "ReplayHost.set_batch_layout: ", expected,
                      " keys (one per output), got ", keys.size());
    for (int64_t i : kept) {
      TORCH_CHECK_VALUE(i >= 0 && i < static_cast<int64_t>(keys.size()),
                        "ReplayHost.set_batch_layout: kept position ", i, " is not an output");
    }
    batch_type_ = std::move(batch_type);
    keys_ = std::move(keys);
    kept_ = std::move(kept);
    owner_ = py::module_::import("builtins").attr("object")();  // this host's mark on its batches
  }

  // ReplayBuffer.sample's route: a new batch (its outputs views of one allocation), or, given
  // `out` (a batch this host made), the same batch refilled: its tensors overwritten, its keys
  // set back to them. A batch keeps its outputs (a tuple, sample_output order) and this host's
  // mark in its attributes. The Python wrapper finishes what the layout leaves (nested
  // observations, HER's callables).
  py::object sample_batch(int64_t batch_size, py::handle out) {
    TORCH_CHECK_VALUE(batch_type_, "ReplayHost.sample_batch: set_batch_layout first");
    const size_t outputs = keys_.size();
    py::object batch, held;  // null until made or found (a default py::tuple is an empty one)
    Tensors given;           // the batch's tensors (copied here, holding the GIL: see SampleCall)
    if (!out.is_none()) {
      py::object attributes = py::reinterpret_steal<py::object>(
          Py_TYPE(out.ptr()) == reinterpret_cast<PyTypeObject*>(batch_type_.ptr())
              ? PyObject_GenericGetDict(out.ptr(), nullptr)
              : nullptr);
      PyObject* mark = attributes ? PyDict_GetItemString(attributes.ptr(), "_owner") : nullptr;
      PyObject* tensors = attributes ? PyDict_GetItemString(attributes.ptr(), "_outputs") : nullptr;
      if (!attributes) PyErr_Clear();
      TORCH_CHECK_VALUE(mark == owner_.ptr() && tensors != nullptr && PyTuple_Check(tensors) &&
                            static_cast<size_t>(PyTuple_GET_SIZE(tensors)) == outputs,
                        "ReplayBuffer.sample: out should be a Batch this buffer's sample "
                        "returned, got ",
                        py::str(py::type::of(out).attr("__name__")).cast<std::string>());
      held = py::reinterpret_borrow<py::object>(tensors);
      given.reserve(outputs);
      for (size_t i = 0; i < outputs; ++i) {
        PyObject* t = PyTuple_GET_ITEM(tensors, i);
        TORCH_CHECK_VALUE(THPVariable_Check(t), "ReplayBuffer.sample: out's output ", i,
                          " is no longer a tensor");
        given.push_back(THPVariable_Unpack(t));
      }
      batch = py::reinterpret_borrow<py::object>(out);
    }
    std::vector<at::Tensor> made;
    {
      py::gil_scoped_release release;
      auto lock = lock_.acquire();
      made = replay_sample_into_cpu(state_, columns_, batch_size, config_, given);
    }
    if (!held) {
      TORCH_CHECK_VALUE(made.size() == outputs, "ReplayHost.sample_batch: the layout names ",
                        outputs, " outputs, the sample made ", made.size());
      held = py::tuple(outputs);  // filled below
      for (size_t i = 0; i < outputs; ++i) {
        PyObject* wrapped = THPVariable_Wrap(std::move(made[i]));
        if (wrapped == nullptr) throw py::error_already_set();
        PyTuple_SET_ITEM(held.ptr(), i, wrapped);
      }
      batch = batch_type_();
      py::object attributes =
          py::reinterpret_steal<py::object>(PyObject_GenericGetDict(batch.ptr(), nullptr));
      if (!attributes) throw py::error_already_set();
      PyDict_SetItemString(attributes.ptr(), "_outputs", held.ptr());
      PyDict_SetItemString(attributes.ptr(), "_owner", owner_.ptr());
    }
    for (int64_t i : kept_) {
      if (PyDict_SetItem(batch.ptr(), keys_[static_cast<size_t>(i)].ptr(),
                         PyTuple_GET_ITEM(held.ptr(), i)) != 0) {
        throw py::error_already_set();
      }
    }
    return batch;
  }

  // Windows of consecutive steps (recurrent replay), drawn like sample and counted with it;
  // `columns` are the buffer's columns without the hidden one.
  SequenceSample sample_windows(const Tensors& columns, const at::Tensor& hidden,
                                int64_t batch_size, int64_t steps) {
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    return replay_sample_windows_cpu(state_, columns, hidden, batch_size, steps, config_);
  }

  void update_priorities(const at::Tensor& index, const at::Tensor& generation,
                         const at::Tensor& td_abs, const at::Tensor& applied) {
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    replay_update_priorities_cpu(state_, index, generation, td_abs, config_, applied);
  }

  at::Tensor check() {
    py::gil_scoped_release release;
    auto lock = lock_.acquire();
    return replay_check_cpu(state_);
  }

  // Python sections that read or write the state between op calls run between hold() and
  // release() (ReplayBuffer._locked): other threads' calls wait meanwhile.
  void hold() {
    py::gil_scoped_release release;
    lock_.hold();
  }

  void release() {
    py::gil_scoped_release release;
    lock_.release();
  }

 private:
  [[noreturn]] void field_mismatch(const char* where, const py::dict& fields) const {
    std::string missing, unexpected;
    for (size_t i = obs_columns_; i + 1 < columns_.size(); ++i) {
      if (!fields.contains(names_[i].c_str())) missing += " '" + names_[i] + "'";
    }
    for (const auto& item : fields) {
      const std::string key = py::str(item.first).cast<std::string>();
      bool known = false;
      for (size_t i = obs_columns_; i + 1 < columns_.size(); ++i) known |= key == names_[i];
      if (!known) unexpected += " '" + key + "'";
    }
    TORCH_CHECK_VALUE(false, "ReplayBuffer.", where, ": fields should be ", other_names(),
                      "; missing [", missing, " ], unexpected [", unexpected, " ]");
    __builtin_unreachable();
  }

  std::string other_names() const {
    std::string out = "[";
    for (size_t i = obs_columns_; i + 1 < columns_.size(); ++i) {
      out += (i > static_cast<size_t>(obs_columns_) ? ", '" : "'") + names_[i] + "'";
    }
    return out + "]";
  }

  // The observation columns of `value` into `out`; returns their row count (checked against
  // `count` unless it is -1).
  int64_t observations(const char* where, const char* name, py::handle value, int64_t count,
                       Tensors& out) {
    if (obs_columns_ == 1 && !py::isinstance<py::dict>(value)) {
      out.push_back(rows(where, name, value, 0, count));
      return out.back().size(0);
    }
    TORCH_CHECK_VALUE(py::isinstance<py::dict>(value), "ReplayBuffer.", where, ": ", name,
                      " should be a dict with keys ", observation_names(), ", got ",
                      py::str(py::type::of(value).attr("__name__")).cast<std::string>());
    const auto dict = py::reinterpret_borrow<py::dict>(value);
    TORCH_CHECK_VALUE(static_cast<int64_t>(py::len(dict)) == obs_columns_, "ReplayBuffer.", where,
                      ": ", name, " should be a dict with keys ", observation_names(), ", got ",
                      py::str(py::list(dict.attr("keys")())).cast<std::string>());
    for (int64_t i = 0; i < obs_columns_; ++i) {
      TORCH_CHECK_VALUE(dict.contains(names_[i].c_str()), "ReplayBuffer.", where, ": ", name,
                        " should be a dict with keys ", observation_names(), ", got ",
                        py::str(py::list(dict.attr("keys")())).cast<std::string>());
      const std::string label = std::string(name) + "['" + names_[i] + "']";
      out.push_back(rows(where, label, dict[names_[i].c_str()], i, count));
      count = out.back().size(0);
    }
    return count;
  }

  std::string observation_names() const {
    std::string out = "[";
    for (int64_t i = 0; i < obs_columns_; ++i) out += (i ? ", '" : "'") + names_[i] + "'";
    return out + "]";
  }

  at::Tensor tensor_of(const char* where, const std::string& name, py::handle value) {
    if (THPVariable_Check(value.ptr())) return THPVariable_Unpack(value.ptr());
    if (py::isinstance(value, ndarray_)) {
      const auto array = py::reinterpret_borrow<py::array>(value);
      TORCH_CHECK_VALUE(native(array), "ReplayBuffer.", where, ": ", name,
                        " has a byte order "
                        "other than this machine's (",
                        array.dtype().byteorder(),
                        "); convert it "
                        "with .astype(its dtype.newbyteorder('='))");
      if (array.flags() & py::array::c_style) {
        // A view of the array's own bytes (it outlives the call): gymnasium's steps go in
        // without a copy, where torch.from_numpy would cost more than the whole add.
        const auto type = torch::utils::numpy_dtype_to_aten(array.dtype().num());
        std::vector<int64_t> sizes(array.shape(), array.shape() + array.ndim());
        return at::from_blob(const_cast<void*>(array.data()), sizes,
                             at::TensorOptions().dtype(type));
      }
      return torch::utils::tensor_from_numpy(value.ptr(), /*warn_if_not_writeable=*/false);
    }
    try {
      return THPVariable_Unpack(as_tensor_(value).ptr());
    } catch (py::error_already_set& err) {
      TORCH_CHECK_VALUE(false, "ReplayBuffer.", where, ": ", name,
                        " should be a tensor, an array or a list of numbers, got ",
                        py::str(py::type::of(value).attr("__name__")).cast<std::string>(), " (",
                        err.what(), ")");
    }
    return {};
  }

  // `value` as [count, *shape] rows of column i (count -1: any).
  at::Tensor rows(const char* where, const std::string& name, py::handle value, size_t i,
                  int64_t count) {
    at::Tensor t = tensor_of(where, name, value);
    const at::Tensor& column = columns_[i];
    TORCH_CHECK_VALUE(t.device().is_cpu(), "ReplayBuffer.", where, ": ", name,
                      " should be on the CPU like the buffer, got ", t.device());
    if (t.scalar_type() != column.scalar_type()) {
      TORCH_CHECK_VALUE(castable(t.scalar_type(), column.scalar_type()), "ReplayBuffer.", where,
                        ": ", name, " should be ", dtype_text(column.scalar_type()),
                        " (or convert to it within its kind), got ", dtype_text(t.scalar_type()));
      t = converted(t, column.scalar_type());
    }
    const auto row_shape = column.sizes().slice(1);
    bool same = t.dim() == column.dim() && (count < 0 || t.size(0) == count);
    for (size_t d = 0; same && d < row_shape.size(); ++d) same = t.size(d + 1) == row_shape[d];
    if (!same) {
      std::vector<int64_t> want{count < 0 ? (t.dim() ? t.size(0) : 0) : count};
      want.insert(want.end(), row_shape.begin(), row_shape.end());
      TORCH_CHECK_VALUE(false, "ReplayBuffer.", where, ": ", name, " should have shape ",
                        shape_text(want), ", got ", shape_text(t.sizes()));
    }
    return t.detach();
  }

  // `t` in `type`. gymnasium's float64 rewards and observations meet float32 columns at every
  // step: a small contiguous one converts in a plain loop, where a dispatched .to() would cost
  // more than the rest of the add.
  static at::Tensor converted(const at::Tensor& t, at::ScalarType type) {
    constexpr int64_t kSmall = 4096;
    if (t.scalar_type() == at::kDouble && type == at::kFloat && t.is_contiguous() &&
        t.numel() <= kSmall) {
      at::Tensor out = at::empty(t.sizes(), at::TensorOptions().dtype(at::kFloat));
      const double* src = t.const_data_ptr<double>();
      float* dst = out.mutable_data_ptr<float>();
      for (int64_t i = 0; i < t.numel(); ++i) dst[i] = static_cast<float>(src[i]);
      return out;
    }
    return t.to(type);
  }

  at::Tensor flags(const char* name, py::handle value, int64_t envs) {
    at::Tensor t = tensor_of("add", name, value);
    TORCH_CHECK_VALUE(t.device().is_cpu() && t.dim() == 1 && t.size(0) == envs &&
                          !at::isFloatingType(t.scalar_type()) &&
                          !at::isComplexType(t.scalar_type()),
                      "ReplayBuffer.add: ", name, " should be ", envs, " bools [N], got ",
                      shape_text(t.sizes()), " ", dtype_text(t.scalar_type()));
    return t;
  }

  Tensors state_, columns_;
  std::vector<double> config_;
  std::vector<std::string> names_;
  int64_t obs_columns_;
  py::object ndarray_, as_tensor_;
  py::object batch_type_, owner_;  // set_batch_layout
  py::tuple keys_;
  std::vector<int64_t> kept_;
  BufferLock lock_;
};

}  // namespace

void bind_replay_host(py::module_& m) {
  py::class_<ReplayHost>(m, "ReplayHost",
                         "The direct route of a CPU buffer's replay ops (see replay_host.cpp).")
      .def(py::init<Tensors, Tensors, std::vector<double>, std::vector<std::string>, int64_t>(),
           py::arg("state"), py::arg("columns"), py::arg("config"), py::arg("names"),
           py::arg("obs_columns"))
      .def("add", &ReplayHost::add)
      .def("add_episode", &ReplayHost::add_episode)
      .def("end_episodes", &ReplayHost::end_episodes)
      .def("convert", &ReplayHost::convert)
      .def("sample", &ReplayHost::sample)
      .def("set_batch_layout", &ReplayHost::set_batch_layout)
      .def("sample_batch", &ReplayHost::sample_batch)
      .def("sample_windows", &ReplayHost::sample_windows)
      .def("update_priorities", &ReplayHost::update_priorities)
      .def("check", &ReplayHost::check)
      .def("hold", &ReplayHost::hold)
      .def("release", &ReplayHost::release);
}

}  // namespace pyrl
