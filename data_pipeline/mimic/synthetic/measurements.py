"""Measurement vocabulary: hospital labs (d_labitems), ICU items (d_items), microbiology, radiology exams.

Numbers follow one model everywhere: a measurement has a normal range [lo, hi]; a condition shifts it by a
number of half-range units (+1 = at the upper limit, +3 = well above it). ``log`` items (troponin, BNP, lactate)
scale multiplicatively so that they stay positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Measure:
    key: str
    itemid: int
    label: str
    unit: str
    lo: float
    hi: float
    decimals: int
    log: bool = False
    fluid: str = ""  # labs: d_labitems.fluid
    category: str = ""  # labs: d_labitems.category; icu: d_items.category
    abbreviation: str = ""


def value_model(lo, hi, decimals, log, shift, z) -> np.ndarray:
    """Vectorised value model (every argument broadcasts): position ``pos = shift + 0.35 z`` in half-range units.

    * linear items: ``center + half * pos`` above the lower limit; below it the curve continues as
      ``lo * exp((pos + 1) * half / lo)`` (same slope at the limit), so very low values stay positive
      (platelets 40, hemoglobin 7) instead of crossing zero;
    * ``log`` items: ``center * (hi / center) ** pos`` with ``center`` the geometric mid-range.
    Values are rounded to the item's decimals and never below one unit of the last decimal (0 for lo == 0).
    """
    lo, hi, decimals, log = (np.asarray(a) for a in (lo, hi, decimals, log))
    pos = np.asarray(shift, dtype=np.float64) + 0.35 * np.asarray(z, dtype=np.float64)
    center, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    safe_lo = np.where(lo > 0, lo, 1.0)
    below = np.where(lo > 0, safe_lo * np.exp(np.minimum(pos + 1.0, 0.0) * half / safe_lo), center + half * pos)
    lin = np.where(pos >= -1.0, center + half * pos, below)
    center_log = np.where(lo > 0, np.sqrt(np.maximum(lo * hi, 1e-12)), hi / 3.0)
    logv = center_log * np.power(hi / center_log, pos)
    out = np.where(log, logv, lin)
    floor = np.where((lo > 0) | log, 10.0 ** (-decimals), 0.0)
    scale = 10.0 ** decimals
    return np.rint(np.maximum(out, floor) * scale) / scale


def values_for(m: Measure, shift: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Values of one item for shifts (half-range units) and standard-normal noise ``z`` (same shape)."""
    return value_model(m.lo, m.hi, m.decimals, m.log, shift, z)


def _measures(spec: str, **common) -> dict[str, Measure]:
    out = {}
    for line in spec.strip().splitlines():
        p = [x.strip() for x in line.split("|")]
        key, itemid, label, unit, lo, hi, dec, flags = p[:8]
        extra = dict(common)
        if len(p) > 8 and p[8]:
            extra["category"] = p[8]
        if len(p) > 9 and p[9]:
            extra["fluid"] = p[9]
        out[key] = Measure(key, int(itemid), label, unit, float(lo), float(hi), int(dec), log=flags == "log",
                           abbreviation=label, **extra)
    return out


# key | itemid | label | unit | lo | hi | decimals | log? | category | fluid
LABS = _measures("""
wbc|51301|White Blood Cells|K/uL|4.0|11.0|1||Hematology|Blood
hgb|51222|Hemoglobin|g/dL|13.7|17.5|1||Hematology|Blood
hct|51221|Hematocrit|%|40.0|51.0|1||Hematology|Blood
plt|51265|Platelet Count|K/uL|150|440|0||Hematology|Blood
na|50983|Sodium|mEq/L|135|145|0||Chemistry|Blood
k|50971|Potassium|mEq/L|3.3|5.1|1||Chemistry|Blood
cl|50902|Chloride|mEq/L|96|108|0||Chemistry|Blood
hco3|50882|Bicarbonate|mEq/L|22|32|0||Chemistry|Blood
ag|50868|Anion Gap|mEq/L|8|20|0||Chemistry|Blood
bun|51006|Urea Nitrogen|mg/dL|6|20|0||Chemistry|Blood
cr|50912|Creatinine|mg/dL|0.5|1.2|1||Chemistry|Blood
glu|50931|Glucose|mg/dL|70|100|0||Chemistry|Blood
mg|50960|Magnesium|mg/dL|1.6|2.6|1||Chemistry|Blood
ca|50893|Calcium, Total|mg/dL|8.4|10.3|1||Chemistry|Blood
phos|50970|Phosphate|mg/dL|2.7|4.5|1||Chemistry|Blood
alb|50862|Albumin|g/dL|3.5|5.2|1||Chemistry|Blood
ast|50878|Asparate Aminotransferase (AST)|IU/L|0|40|0||Chemistry|Blood
alt|50861|Alanine Aminotransferase (ALT)|IU/L|0|40|0||Chemistry|Blood
tbili|50885|Bilirubin, Total|mg/dL|0.1|1.5|1|log|Chemistry|Blood
trop|51003|Troponin T|ng/mL|0.001|0.01|3|log|Chemistry|Blood
ckmb|50911|Creatine Kinase, MB Isoenzyme|ng/mL|0.5|10|1|log|Chemistry|Blood
bnp|50963|NTproBNP|pg/mL|5|353|0|log|Chemistry|Blood
lactate|50813|Lactate|mmol/L|0.5|2.0|1|log|Blood Gas|Blood
ph|50820|pH|units|7.35|7.45|2||Blood Gas|Blood
pco2|50818|pCO2|mm Hg|35|45|0||Blood Gas|Blood
po2|50821|pO2|mm Hg|85|105|0||Blood Gas|Blood
inr|51237|INR(PT)||0.9|1.1|1||Hematology|Blood
pt|51274|PT|sec|9.4|12.5|1||Hematology|Blood
uwbc|51516|WBC|#/hpf|0|5|0||Hematology|Urine
""")
LAB_CORE = ("wbc", "hgb", "hct", "plt", "na", "k", "cl", "hco3", "ag", "bun", "cr", "glu")
LAB_FOLLOWUP = ("wbc", "hgb", "na", "k", "bun", "cr", "glu")
LAB_EXTRA = ("mg", "ca", "phos", "alb", "ast", "alt", "tbili", "inr", "pt", "lactate")

# ICU numeric chart items: key | itemid | label | unit | lownormal | highnormal | decimals | - | d_items category
VITALS = _measures("""
hr|220045|Heart Rate|bpm|60|100|0||Routine Vital Signs
sbp|220179|Non Invasive Blood Pressure systolic|mmHg|100|140|0||Routine Vital Signs
dbp|220180|Non Invasive Blood Pressure diastolic|mmHg|60|90|0||Routine Vital Signs
map|220181|Non Invasive Blood Pressure mean|mmHg|65|100|0||Routine Vital Signs
rr|220210|Respiratory Rate|insp/min|12|20|0||Respiratory
spo2|220277|O2 saturation pulseoxymetry|%|94|100|0||Respiratory
temp|223761|Temperature Fahrenheit|°F|97.0|99.5|1||Routine Vital Signs
""")
ASSESSMENTS = _measures("""
fio2|223835|Inspired O2 Fraction|%|21|40|0||Respiratory
fsglu|225664|Glucose finger stick (range 70-100)|mg/dL|70|100|0||Routine Vital Signs
weight|224639|Daily Weight|kg|50|100|1||General
cvp|220074|Central Venous Pressure|mmHg|2|8|0||Hemodynamics
peep|220339|PEEP set|cmH2O|5|8|0||Respiratory
tidal|224685|Tidal Volume (observed)|mL|350|550|0||Respiratory
""")
#: arterial-line pressures charted with the vitals when an arterial line is in (derived from the cuff values)
ARTERIAL = _measures("""
abp_sys|220050|Arterial Blood Pressure systolic|mmHg|90|140|0||Routine Vital Signs
abp_dia|220051|Arterial Blood Pressure diastolic|mmHg|60|90|0||Routine Vital Signs
abp_mean|220052|Arterial Blood Pressure mean|mmHg|65|100|0||Routine Vital Signs
""")
#: sicker ICU patients get an arterial line (procedureevents) and arterial pressures (chartevents)
ART_LINE_SEVERITY = 0.5
#: GCS items: value text by score (index = score), itemid, label.
GCS = (
    (220739, "GCS - Eye Opening", ("", "No Response", "To Pain", "To Speech", "Spontaneously")),
    (223900, "GCS - Verbal Response", ("", "No Response", "Incomprehensible sounds", "Inappropriate Words",
                                        "Confused", "Oriented")),
    (223901, "GCS - Motor Response", ("", "No response", "Abnormal extension", "Abnormal Flexion",
                                       "Flex-withdraws", "Localizes Pain", "Obeys Commands")),
)
RHYTHM_ITEM = (220048, "Heart Rhythm")
RHYTHMS = ("SR (Sinus Rhythm)", "ST (Sinus Tachycardia)", "AF (Atrial Fibrillation)")

# itemid, label, unit, category, ordercategoryname, ordercategorydescription, rate unit ("" = bolus)
INPUT_ITEMS = {
    "ns": (225158, "NaCl 0.9%", "mL", "Fluids/Intake", "02-Fluids (Crystalloids)", "Continuous IV", "mL/hour"),
    "d5w": (220949, "Dextrose 5%", "mL", "Fluids/Intake", "02-Fluids (Crystalloids)", "Continuous IV", "mL/hour"),
    "norepinephrine": (221906, "Norepinephrine", "mg", "Medications", "01-Drips", "Continuous Med",
                       "mcg/kg/min"),
    "vasopressin": (222315, "Vasopressin", "units", "Medications", "01-Drips", "Continuous Med", "units/hour"),
    "propofol": (222168, "Propofol", "mg", "Medications", "01-Drips", "Continuous Med", "mcg/kg/min"),
    "fentanyl": (221744, "Fentanyl", "mg", "Medications", "01-Drips", "Continuous Med", "mcg/hour"),
    "heparin": (225152, "Heparin Sodium", "units", "Medications", "01-Drips", "Continuous Med", "units/hour"),
    "insulin": (223258, "Insulin - Regular", "units", "Medications", "01-Drips", "Continuous Med", "units/hour"),
    "vancomycin": (225798, "Vancomycin", "dose", "Antibiotics", "08-Antibiotics (IV)", "Drug Push", ""),
    "piptazo": (225893, "Piperacillin/Tazobactam (Zosyn)", "dose", "Antibiotics", "08-Antibiotics (IV)",
                "Drug Push", ""),
    "furosemide": (221794, "Furosemide (Lasix)", "mg", "Medications", "03-IV Fluid Bolus", "Drug Push", ""),
    "prbc": (225168, "Packed Red Blood Cells", "mL", "Blood Products/Colloids", "06-Blood Products",
             "Bolus", ""),
}
INGREDIENT_ITEMS = {"water": (220490, "Free Water", "mL", "Ingredients"),
                    "calories": (226060, "Calories", "kcal", "Ingredients")}
OUTPUT_ITEMS = {"foley": (226559, "Foley", "mL"), "void": (226560, "Void", "mL"),
                "chest_tube": (226588, "Chest Tube #1", "mL")}
# itemid, label, unit, category, location, locationcategory, ordercategoryname
PROCEDURE_ITEMS = {
    "ventilation": (225792, "Invasive Ventilation", "min", "Ventilation", "", "", "Ventilation"),
    "niv": (225794, "Non-invasive Ventilation", "min", "Ventilation", "", "", "Ventilation"),
    "central_line": (224263, "Multi Lumen", "min", "Access Lines - Invasive", "Right IJ", "Invasive Venous",
                     "Invasive Lines"),
    "art_line": (225752, "Arterial Line", "min", "Access Lines - Invasive", "Left Radial", "Invasive Arterial",
                 "Invasive Lines"),
    "cxr": (225459, "Chest X-Ray", "None", "Imaging", "", "", "Imaging"),
    "crrt": (225802, "Dialysis - CRRT", "min", "Dialysis", "", "", "Dialysis"),
    "culture": (225401, "Blood Cultured", "None", "Procedures", "", "", "Procedures"),
}
DATETIME_ITEMS = {"art_line": (224288, "Arterial Line Insertion Date", "Access Lines - Invasive"),
                  "central_line": (225315, "Multi Lumen Insertion Date", "Access Lines - Invasive"),
                  "foley": (224280, "Foley Catheter Insertion Date", "GI/GU"),
                  "last_bm": (224277, "Last Bowel Movement", "GI/GU")}

# Microbiology: specimen key -> (spec_itemid, spec_type_desc, test_itemid, test_name, organism keys)
SPECIMENS = {
    "blood": (70012, "BLOOD CULTURE", 90201, "Blood Culture, Routine", ("ecoli", "saureus", "kleb")),
    "urine": (70079, "URINE", 90039, "URINE CULTURE", ("ecoli", "kleb", "pseudo")),
    "sputum": (70070, "SPUTUM", 90043, "RESPIRATORY CULTURE", ("spneumo", "saureus", "pseudo")),
    "mrsa": (70091, "MRSA SCREEN", 90162, "MRSA SCREEN", ("saureus",)),
}
ORGANISMS = {"ecoli": (80002, "ESCHERICHIA COLI"), "saureus": (80023, "STAPH AUREUS COAG +"),
             "kleb": (80004, "KLEBSIELLA PNEUMONIAE"), "pseudo": (80026, "PSEUDOMONAS AERUGINOSA"),
             "spneumo": (80053, "STREPTOCOCCUS PNEUMONIAE")}
# antibiotic: ab_itemid, ab_name
ANTIBIOTICS = {"ampicillin": (90004, "AMPICILLIN"), "cefazolin": (90005, "CEFAZOLIN"),
               "ceftriaxone": (90015, "CEFTRIAXONE"), "ciprofloxacin": (90016, "CIPROFLOXACIN"),
               "gentamicin": (90012, "GENTAMICIN"), "vancomycin": (90025, "VANCOMYCIN"),
               "piptazo": (90028, "PIPERACILLIN/TAZO"), "tmp_smx": (90006, "TRIMETHOPRIM/SULFA"),
               "oxacillin": (90019, "OXACILLIN"), "penicillin": (90010, "PENICILLIN G")}
ORGANISM_PANELS = {"ecoli": ("ampicillin", "cefazolin", "ceftriaxone", "ciprofloxacin", "gentamicin", "tmp_smx"),
                   "kleb": ("cefazolin", "ceftriaxone", "ciprofloxacin", "gentamicin", "piptazo"),
                   "pseudo": ("ciprofloxacin", "gentamicin", "piptazo"),
                   "saureus": ("oxacillin", "vancomycin", "tmp_smx", "gentamicin"),
                   "spneumo": ("penicillin", "ceftriaxone", "vancomycin")}

# Radiology: key -> (exam_code, exam_name, cpt_code, normal finding, abnormal finding template)
EXAMS = {
    "cxr_pa_lat": ("C11", "CHEST (PA AND LAT)", "71046", "The lungs are clear. No pleural effusion or pneumothorax.",
                   "{finding}"),
    "cxr_portable": ("C12", "CHEST (PORTABLE AP)", "71045", "Lines and tubes in standard position. No acute process.",
                     "{finding}"),
    "ct_chest": ("CT5", "CT CHEST W/CONTRAST", "71260", "No pulmonary embolism.", "{finding}"),
    "ct_abd": ("CT9", "CT ABD & PELVIS WITH CONTRAST", "74177", "No acute intra-abdominal process.", "{finding}"),
    "ct_head": ("CT1", "CT HEAD W/O CONTRAST", "70450", "No acute intracranial hemorrhage.", "{finding}"),
    "mri_brain": ("MR2", "MR HEAD W/O CONTRAST", "70551", "No acute infarct.", "{finding}"),
    "renal_us": ("US4", "RENAL U.S.", "76770", "Normal-sized kidneys without hydronephrosis.", "{finding}"),
    "echo": ("EC1", "TRANSTHORACIC ECHO", "93306", "Normal biventricular systolic function.", "{finding}"),
    "le_us": ("US7", "UNILAT LOWER EXT VEINS RIGHT", "93971", "No deep venous thrombosis.", "{finding}"),
    "hip_xr": ("X21", "HIP UNILAT (2 VIEWS) RIGHT", "73502", "No fracture.", "{finding}"),
}
#: condition key -> abnormal radiology finding text
FINDINGS = {
    "sepsis": "Patchy opacity at the right base, possibly infectious.",
    "pneumonia": "Right lower lobe consolidation consistent with pneumonia.",
    "chf": "Moderate pulmonary edema and small bilateral pleural effusions; cardiomegaly.",
    "aki": "Kidneys are normal in size. No hydronephrosis.",
    "copd_exac": "Hyperinflated lungs without focal consolidation.",
    "dka": "No acute cardiopulmonary process.",
    "nstemi": "Mild hypokinesis of the inferior wall; ejection fraction 45%.",
    "gi_bleed": "No active extravasation; diverticulosis without diverticulitis.",
    "stroke": "Acute infarct in the left middle cerebral artery territory.",
    "uti": "Mild bladder wall thickening; no hydronephrosis.",
    "cellulitis": "Subcutaneous edema of the right calf; no deep venous thrombosis.",
    "afib_rvr": "Mildly dilated left atrium; preserved ejection fraction.",
    "syncope": "No acute intracranial abnormality.",
    "chest_pain": "No acute cardiopulmonary process.",
    "hip_fracture": "Displaced fracture of the right femoral neck.",
    "hip_oa": "Severe joint space narrowing of the right hip with osteophytes.",
}
