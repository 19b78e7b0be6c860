package server

import "github.com/liftoff-deploy/liftoff/deployments"

// names is the grammar of image names and tags, shared with the catalogue so
// that a push is read the way deployments are. It is a value so that tests
// can stand in for the catalogue's functions.
type names struct {
	normalizeRepo  func(string) (string, error)
	validateTag    func(string) error
	isSignatureTag func(string) bool
}

// catalogueNames is the grammar of package deployments.
func catalogueNames() names {
	return names{
		normalizeRepo:  deployments.NormalizeRepo,
		validateTag:    deployments.ValidateTag,
		isSignatureTag: deployments.IsSignatureTag,
	}
}
