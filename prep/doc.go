// Package prep prepares tables of numbers for a flow, in one place that the
// ready-made model (package model), the command line, the server and the
// Beam pipelines share: Audit finds what in a table would silently ruin a
// fit (constant, integer, few-valued, collinear columns, outliers,
// duplicated rows); StandardizeFrom and RobustStandardizeFrom compute the
// per-column location and scale of the flows.Standardize layer;
// GaussianNLL is the full-covariance Gaussian baseline a flow should beat;
// CheckFinite finds the first NaN or ±Inf of a table.
package prep
