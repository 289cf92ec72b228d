package retail

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docs/data-model.md names every mutation type, rejection code and
// exception kind, so the docs cannot fall behind the code unnoticed.
func TestDataModelDocIsComplete(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "data-model.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	names := MutationTypes()
	names = append(names, CodeInvalid, CodeNotFound, CodeDuplicateID, CodeConflict, CodeInsufficientStock,
		CodeCouponUsed, CodeCouponExpired, CodeCouponNotHers, CodeBadTransition, CodeInactive, CodeNotPermitted)
	for _, k := range []ExceptionKind{ExStockDiscrepancy, ExDuplicateRedemption, ExExpiredCoupon, ExUnknownCoupon, ExOverRefund,
		ExOverReturnUnits, ExTenderMismatch, ExPastReturnWindow, ExReceiptlessCap, ExCouponNotHers, ExUnapprovedApprover} {
		names = append(names, string(k))
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/data-model.md does not mention `%s`", n)
		}
	}
}

// retail is the domain: it imports no other package of Endcap's.
func TestImportsNothingOfEndcap(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		pf, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pf.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/endcap/endcap") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
