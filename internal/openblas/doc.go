// Package openblas is the optional OpenBLAS backend of internal/linalg, for
// users who can use cgo: build or test with -tags openblas and Debian's
// libopenblas-dev (or any OpenBLAS the linker finds as -lopenblas), and
// every product of the library runs on OpenBLAS's cblas_dgemm, called
// through cgo. (It used gonum's binding, gonum.org/v1/netlib, for this one
// call, which made every module that imports the library look up
// golang.org/x/exp when tidied.)
//
// It is a package of its own because Go does not allow cgo and Go assembly
// (internal/linalg's kernels) in one package. Without the tag it is empty.
//
// OpenBLAS splits large products over its own threads (OPENBLAS_NUM_THREADS)
// and its results can change with that number, while the default build's
// results do not depend on GOMAXPROCS: pin OPENBLAS_NUM_THREADS when runs
// must be bit-identical across machines.
package openblas
