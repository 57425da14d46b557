// CUDA launches of the replay bodies: the adds' (csrc/kernels/replay_add.h), the fused sample's
// (csrc/kernels/replay_sample.h, one thread per sample), the priority update's
// (csrc/kernels/replay_update.h, one thread per entry), the exposed tree ops' and the sequence
// ops' (csrc/kernels/sequence_phases.h: one thread per episode, entry or window). They are
// registered for the CUDA dispatch key with the GPU-resident buffer; compiled and linked here
// so the CUDA build proves them.
#include "launch.cuh"
#include "replay.h"

namespace pyrl::cuda {

template cudaError_t launch(const kernels::StageStepBody&, cudaStream_t);
template cudaError_t launch(const kernels::CommitStepsBody&, cudaStream_t);
template cudaError_t launch(const kernels::AddEpisodeBody&, cudaStream_t);
template cudaError_t launch(const kernels::EndEpisodesBody&, cudaStream_t);
template cudaError_t launch(const kernels::SampleRowsBody&, cudaStream_t);
template cudaError_t launch(const kernels::SampleWindowsBody<float>&, cudaStream_t);
template cudaError_t launch(const kernels::SampleWindowsBody<double>&, cudaStream_t);
template cudaError_t launch(const kernels::SampleWeightsBody&, cudaStream_t);
template cudaError_t launch(const kernels::LargestWeightBody&, cudaStream_t);
template cudaError_t launch(const kernels::DivideWeightsBody&, cudaStream_t);
template cudaError_t launch(const kernels::TreeDrawBody&, cudaStream_t);
template cudaError_t launch(const kernels::TreeWeightsBody&, cudaStream_t);
template cudaError_t launch(const kernels::GatherEpisodesBody&, cudaStream_t);
template cudaError_t launch(const kernels::ScatterEpisodesBody&, cudaStream_t);
template cudaError_t launch(const kernels::WriteRowsBody&, cudaStream_t);
template cudaError_t launch(const kernels::GatherWindowsBody<float>&, cudaStream_t);
template cudaError_t launch(const kernels::GatherWindowsBody<double>&, cudaStream_t);
template cudaError_t launch(const kernels::WindowStartsBody&, cudaStream_t);
template cudaError_t launch(const kernels::UpdateEntriesBody<float>&, cudaStream_t);
template cudaError_t launch(const kernels::UpdateEntriesBody<double>&, cudaStream_t);
template cudaError_t launch(const kernels::UpdateLeavesBody&, cudaStream_t);
template cudaError_t launch(const kernels::UpdateTotalsBody&, cudaStream_t);
template cudaError_t launch(const kernels::RefreshAncestorsBody&, cudaStream_t);

}  // namespace pyrl::cuda
