// Package static holds the stylesheet, scripts and images, embedded into the
// binary so a deployment is one file.
package static

import "embed"

// FS holds css/, js/ and img/.
//
//go:embed css js img
var FS embed.FS
