// Python bindings of the private module nnmargin._core: convert arrays, release the GIL, call.
// Input checking that users see happens in python/nnmargin/_validate.py; the checks here only keep
// the C++ side safe when it is called directly.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "cpu/cpu_features.h"
#include "cuda/cuda_backend.h"
#include "nn_search.h"

namespace py = pybind11;

namespace {

// By type number, not object identity: an unpickled array (e.g. one a Dask worker received) can
// carry an equal dtype object that is not numpy's canonical instance. Byte order must be native.
nnm::DType dtype_of(const py::array& a) {
  const py::dtype dt = a.dtype();
  const bool native = dt.byteorder() != '>' || dt.itemsize() == 1;
  const int num = dt.normalized_num();
  if (native && num == py::dtype::of<uint8_t>().normalized_num()) return nnm::cpu::kU8;
  if (native && num == py::dtype::of<float>().normalized_num()) return nnm::cpu::kF32;
  if (native && num == py::dtype::of<double>().normalized_num()) return nnm::cpu::kF64;
  throw py::type_error("points must be uint8, float32 or float64, got " + std::string(py::str(a.dtype())));
}

void require_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + " must be 2-D (points, features)");
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument(std::string(name) + " must be C-contiguous");
}

using IntArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Shared checks of a query matrix against the prepared training points, and the skip indices.
void require_queries(const nnm::cpu::TrainLayout& layout, const py::array& queries) {
  require_matrix(queries, "queries");
  if (dtype_of(queries) != layout.dtype) throw py::type_error("queries and training points differ in dtype");
  if (queries.shape(1) != layout.dim) throw std::invalid_argument("queries and training points differ in features");
}

IndexArray skip_indices(const py::object& skip, int64_t n) {
  IndexArray skip_index;
  if (!skip.is_none()) {
    skip_index = skip.cast<IndexArray>();
    if (skip_index.ndim() != 1 || skip_index.shape(0) != n)
      throw std::invalid_argument("need one leave-one-out index per query");
  }
  return skip_index;
}

nnm::PreparedTrain prepare_train(const py::array& x, const IntArray& class_id, nnm::Metric metric, int num_threads) {
  require_matrix(x, "training points");
  if (class_id.ndim() != 1 || class_id.shape(0) != x.shape(0))
    throw std::invalid_argument("need one class id per training point");
  const nnm::DType dtype = dtype_of(x);
  py::gil_scoped_release release;
  return nnm::prepare_train(x.data(), dtype, x.shape(0), x.shape(1), class_id.data(), metric, num_threads);
}

py::tuple search(const nnm::PreparedTrain& train, const py::array& queries, const IntArray& query_class,
                 const py::object& skip, const std::string& device, const std::string& isa, int num_threads) {
  const nnm::cpu::TrainLayout& layout = *train.layout;
  require_queries(layout, queries);
  const int64_t n = queries.shape(0);
  if (query_class.ndim() != 1 || query_class.shape(0) != n) throw std::invalid_argument("need one class per query");
  const IndexArray skip_index = skip_indices(skip, n);
  py::array_t<double> value_same(n), value_other(n);
  py::array_t<int64_t> index_same(n), index_other(n);
  nnm::SearchOutput out{value_same.mutable_data(), index_same.mutable_data(), value_other.mutable_data(),
                        index_other.mutable_data()};
  nnm::SearchOptions options{device, isa, num_threads};
  {
    py::gil_scoped_release release;
    nnm::search(train, queries.data(), n, query_class.data(), skip.is_none() ? nullptr : skip_index.data(),
                options, out);
  }
  return py::make_tuple(value_same, index_same, value_other, index_other);
}

py::tuple search_topk(const nnm::PreparedTrain& train, const py::array& queries, int k, const py::object& skip,
                      const std::string& isa, int num_threads) {
  const nnm::cpu::TrainLayout& layout = *train.layout;
  require_queries(layout, queries);
  if (k < 1) throw std::invalid_argument("k must be at least 1");
  const int64_t n = queries.shape(0), nc = layout.n_classes;
  const IndexArray skip_index = skip_indices(skip, n);
  py::array_t<double> value({n, nc, static_cast<int64_t>(k)});
  py::array_t<int64_t> index({n, nc, static_cast<int64_t>(k)});
  nnm::cpu::TopkOutput out{value.mutable_data(), index.mutable_data()};
  nnm::SearchOptions options{"cpu", isa, num_threads};
  {
    py::gil_scoped_release release;
    nnm::search_topk(train, queries.data(), n, skip.is_none() ? nullptr : skip_index.data(), k, options, out);
  }
  return py::make_tuple(value, index);
}

py::tuple bisector(const nnm::PreparedTrain& l2, const nnm::PreparedTrain& dual, const py::array& queries,
                    const IntArray& query_class, const py::array& pivots, const py::array_t<double, py::array::c_style | py::array::forcecast>& pivot_sq_dist,
                    const std::string& isa, int num_threads) {
  const nnm::cpu::TrainLayout& layout = *l2.layout;
  require_matrix(queries, "queries");
  const int64_t n = queries.shape(0);
  if (dtype_of(queries) != layout.dtype || dtype_of(pivots) != layout.dtype)
    throw py::type_error("queries, pivots and training points differ in dtype");
  if (queries.shape(1) != layout.dim) throw std::invalid_argument("queries and training points differ in features");
  if (query_class.ndim() != 1 || query_class.shape(0) != n) throw std::invalid_argument("need one class per query");
  if (pivot_sq_dist.ndim() != 2 || pivot_sq_dist.shape(0) != n)
    throw std::invalid_argument("pivot distances must be (queries, pivots)");
  const int64_t n_pivots = pivot_sq_dist.shape(1);
  if (n_pivots < 1 || n_pivots > nnm::cpu::kMaxPivots)
    throw std::invalid_argument("the bisector bound takes 1 to " + std::to_string(nnm::cpu::kMaxPivots) + " pivots");
  if (pivots.ndim() != 3 || pivots.shape(0) != n || pivots.shape(1) != n_pivots || pivots.shape(2) != layout.dim ||
      !(pivots.flags() & py::array::c_style))
    throw std::invalid_argument("pivots must be a C-contiguous (queries, pivots, features) array");
  py::array_t<double> bound(n);
  py::array_t<int64_t> index(n);
  nnm::cpu::BisectorOutput out{bound.mutable_data(), index.mutable_data()};
  nnm::SearchOptions options{"cpu", isa, num_threads};
  {
    py::gil_scoped_release release;
    nnm::bisector(l2, dual, queries.data(), n, query_class.data(), pivots.data(), pivot_sq_dist.data(), static_cast<int>(n_pivots),
                  options, out);
  }
  return py::make_tuple(bound, index);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnmargin's compiled core (private: use the nnmargin package)";

  // The metric names are the ones Python uses (nnmargin._names.METRICS): no integer codes cross.
  py::enum_<nnm::Metric>(m, "Metric").value("l2", nnm::cpu::kL2).value("l1", nnm::cpu::kL1).value("linf", nnm::cpu::kLinf);
  m.attr("MAX_PIVOTS") = nnm::cpu::kMaxPivots;

  py::class_<nnm::PreparedTrain>(m, "PreparedTrain")
      .def_property_readonly("n_points", [](const nnm::PreparedTrain& t) { return t.layout->m; })
      .def_property_readonly("dim", [](const nnm::PreparedTrain& t) { return t.layout->dim; })
      .def_property_readonly("dim_padded", [](const nnm::PreparedTrain& t) { return t.layout->dim_padded; })
      .def_property_readonly("metric", [](const nnm::PreparedTrain& t) { return t.layout->metric; })
      .def_property_readonly("nbytes", [](const nnm::PreparedTrain& t) { return t.layout->data.size(); });

  m.def("prepare_train", &prepare_train, py::arg("x"), py::arg("class_id"), py::arg("metric"), py::arg("num_threads") = 0,
        "Lay out training points (m, dim) with dense class ids (m,) for a Metric (num_threads 0: all cores).");
  m.def("search", &search, py::arg("train"), py::arg("queries"), py::arg("query_class"), py::arg("skip") = py::none(),
        py::arg("device") = "cpu", py::arg("isa") = "auto", py::arg("num_threads") = 0,
        "Nearest same-class and other-class training point of each query: "
        "(value_same, index_same, value_other, index_other), each (n,).");
  m.def("search_topk", &search_topk, py::arg("train"), py::arg("queries"), py::arg("k"), py::arg("skip") = py::none(),
        py::arg("isa") = "auto", py::arg("num_threads") = 0,
        "The k nearest training points of every class for each query: (value, index), each "
        "(n, n_classes, k), ascending by (value, index); +inf / -1 where a class has fewer than k points.");
  m.def("bisector", &bisector, py::arg("l2"), py::arg("dual"), py::arg("queries"), py::arg("query_class"),
        py::arg("pivots"), py::arg("pivot_sq_dist"), py::arg("isa") = "auto", py::arg("num_threads") = 0,
        "Bisector lower bound of the l2-1NN robust radius: (bound (n,), index (n,)) in kernel units.");
  m.def("cpu_isas", &nnm::cpu::supported_isas, "CPU kernel variants this machine runs, fastest first.");
  m.def("built_isas", &nnm::cpu::built_isas, "CPU kernel variants this build holds, fastest first (a superset of cpu_isas).");
  m.def("peak_sequences", &nnm::cpu::peak_sequences, py::arg("isa"),
        "The inner instruction sequences of a CPU variant's kernels (for peak_probe).");
  m.def("peak_probe", [](const std::string& isa, const std::string& sequence, double seconds) {
          py::gil_scoped_release release;
          return nnm::cpu::peak_probe(isa, sequence, seconds);
        }, py::arg("isa"), py::arg("sequence"), py::arg("seconds") = 0.2,
        "Single-core GOP/s (2 ops per pair-dim) of one inner sequence, from registers: the peak a kernel "
        "using it can reach on this core.");
  m.def("built_with_cuda", &nnm::cuda::built_with_cuda);
  m.def("cuda_device_count", [] { return nnm::cuda::device_status().usable; },
        "CUDA devices the kernels can run on (compute capability >= 8.0); 0 without a build, driver or GPU.");
  // emulated=True: the CUDA backend compiled for the host (csrc/cuda/emulation), for tests.
  m.def("cuda_status", [](bool emulated) {
          const auto s = emulated ? nnm::cuda_emulated::device_status() : nnm::cuda::device_status();
          return py::make_tuple(s.usable, s.reason);
        }, py::arg("emulated") = false,
        "(usable devices, reason there are none: '' when usable > 0).");
  m.def("cuda_last_search", [](bool emulated) {
          const auto s = emulated ? nnm::cuda_emulated::last_search_stats() : nnm::cuda::last_search_stats();
          py::dict d;
          d["device_ms"] = s.device_ms;
          d["chunks"] = s.chunks;
          d["resident"] = s.resident;
          return d;
        }, py::arg("emulated") = false,
        "What the last CUDA search did: device_ms (CUDA events: kernels, and copies when streaming), "
        "chunks (training chunks searched), resident (the cached device copy was used).");
}
