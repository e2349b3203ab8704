"""Clinical vocabulary of the synthetic cohort: admitting conditions, chronic comorbidities, ICD procedures.

Codes and titles are real public ICD-9-CM / ICD-10-CM / ICD-10-PCS codes for common conditions (no dot, as in
MIMIC-IV) with their HCUP CCS category. Each condition names what it drives elsewhere (labs, drugs, procedures,
exams, microbiology, care units) by keys into :mod:`.measurements` and :mod:`.drugs`; the links are checked by
the tests, so a typo fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    icd10: str
    title10: str
    icd9: str
    title9: str
    ccs: int
    ccs_name: str

    def pick(self, version: int) -> tuple[str, str]:
        return (self.icd10, self.title10) if version == 10 else (self.icd9, self.title9)


@dataclass(frozen=True)
class Condition:
    key: str
    code: Code
    weight: float  # relative frequency as the reason for an encounter
    severity: float  # 0..1 baseline acuity
    complaints: tuple[str, ...]  # ED / discharge-note chief complaints
    service: str  # hosp/services curr_service
    ward: str  # transfers careunit on the floor
    icu_unit: str
    labs: tuple[tuple[str, float], ...]  # lab key -> shift in half-reference-range units (+ high, - low)
    vitals: tuple[tuple[str, float], ...]  # ICU/ED vital key -> shift
    drugs: tuple[str, ...]  # inpatient drug keys (drugs.DRUGS)
    ed_meds: tuple[str, ...]  # ED pyxis drug keys
    procedures: tuple[str, ...]  # PROCEDURES keys (done with probability ~0.6 each)
    exams: tuple[str, ...]  # radiology exam keys (measurements.EXAMS)
    micro: tuple[str, ...]  # microbiology specimen keys (measurements.SPECIMENS)
    secondary: tuple[str, ...]  # extra diagnosis keys coded in the same admission (DIAGNOSES)
    drg: tuple[str, str]  # (HCFA drg_code, description)
    hpi: str  # history-of-present-illness phrase
    course: str  # hospital-course phrase
    elective: bool = False  # only reached by planned (non-ED) admissions


def _code(row: str) -> Code:
    icd10, title10, icd9, title9, ccs, ccs_name = (p.strip() for p in row.split("|"))
    return Code(icd10, title10, icd9, title9, int(ccs), ccs_name)


# key | ICD-10 | title | ICD-9 | title | CCS | CCS name
_DX = """
sepsis|A419|Sepsis, unspecified organism|0389|Unspecified septicemia|2|Septicemia (except in labor)
severe_sepsis|R6520|Severe sepsis without septic shock|99592|Severe sepsis|2|Septicemia (except in labor)
septic_shock|R6521|Severe sepsis with septic shock|78552|Septic shock|249|Shock
pneumonia|J189|Pneumonia, unspecified organism|486|Pneumonia, organism unspecified|122|Pneumonia (except that caused by tuberculosis or sexually transmitted disease)
chf|I5023|Acute on chronic systolic (congestive) heart failure|42823|Acute on chronic systolic heart failure|108|Congestive heart failure; nonhypertensive
aki|N179|Acute kidney failure, unspecified|5849|Acute kidney failure, unspecified|157|Acute and unspecified renal failure
copd_exac|J441|Chronic obstructive pulmonary disease with (acute) exacerbation|49121|Obstructive chronic bronchitis with (acute) exacerbation|127|Chronic obstructive pulmonary disease and bronchiectasis
dka|E1010|Type 1 diabetes mellitus with ketoacidosis without coma|25013|Diabetes with ketoacidosis, type I [juvenile type], uncontrolled|50|Diabetes mellitus with complications
nstemi|I214|Non-ST elevation (NSTEMI) myocardial infarction|41071|Subendocardial infarction, initial episode of care|100|Acute myocardial infarction
gi_bleed|K922|Gastrointestinal hemorrhage, unspecified|5789|Hemorrhage of gastrointestinal tract, unspecified|153|Gastrointestinal hemorrhage
stroke|I639|Cerebral infarction, unspecified|43491|Cerebral artery occlusion, unspecified with cerebral infarction|109|Acute cerebrovascular disease
uti|N390|Urinary tract infection, site not specified|5990|Urinary tract infection, site not specified|159|Urinary tract infections
cellulitis|L03115|Cellulitis of right lower limb|6826|Cellulitis and abscess of leg, except foot|197|Skin and subcutaneous tissue infections
afib_rvr|I4891|Unspecified atrial fibrillation|42731|Atrial fibrillation|106|Cardiac dysrhythmias
syncope|R55|Syncope and collapse|7802|Syncope and collapse|245|Syncope
chest_pain|R079|Chest pain, unspecified|78650|Chest pain, unspecified|102|Nonspecific chest pain
hip_fracture|S72001A|Fracture of unspecified part of neck of right femur, initial encounter for closed fracture|82000|Closed fracture of intracapsular section of neck of femur, unspecified|226|Fracture of neck of femur (hip)
hip_oa|M1611|Unilateral primary osteoarthritis, right hip|71515|Osteoarthrosis, localized, primary, pelvic region and thigh|203|Osteoarthritis
resp_failure|J9601|Acute respiratory failure with hypoxia|51881|Acute respiratory failure|131|Respiratory failure; insufficiency; arrest (adult)
hypertension|I10|Essential (primary) hypertension|4019|Unspecified essential hypertension|98|Essential hypertension
diabetes|E119|Type 2 diabetes mellitus without complications|25000|Diabetes mellitus without mention of complication, type II or unspecified type, not stated as uncontrolled|49|Diabetes mellitus without complication
hyperlipidemia|E785|Hyperlipidemia, unspecified|2724|Other and unspecified hyperlipidemia|53|Disorders of lipid metabolism
ckd|N183|Chronic kidney disease, stage 3 (moderate)|5853|Chronic kidney disease, Stage III (moderate)|158|Chronic kidney disease
cad|I2510|Atherosclerotic heart disease of native coronary artery without angina pectoris|41401|Coronary atherosclerosis of native coronary artery|101|Coronary atherosclerosis and other heart disease
copd|J449|Chronic obstructive pulmonary disease, unspecified|496|Chronic airway obstruction, not elsewhere classified|127|Chronic obstructive pulmonary disease and bronchiectasis
tobacco|F17210|Nicotine dependence, cigarettes, uncomplicated|3051|Tobacco use disorder|663|Screening and history of mental health and substance abuse codes
gerd|K219|Gastro-esophageal reflux disease without esophagitis|53081|Esophageal reflux|138|Esophageal disorders
depression|F329|Major depressive disorder, single episode, unspecified|311|Depressive disorder, not elsewhere classified|657|Mood disorders
chronic_afib|I482|Chronic atrial fibrillation|42731|Atrial fibrillation|106|Cardiac dysrhythmias
anemia|D649|Anemia, unspecified|2859|Anemia, unspecified|59|Deficiency and other anemia
hyponatremia|E871|Hypo-osmolality and hyponatremia|2761|Hyposmolality and/or hyponatremia|55|Fluid and electrolyte disorders
anticoag|Z7901|Long term (current) use of anticoagulants|V5861|Long-term (current) use of anticoagulants|259|Residual codes; unclassified
"""
DIAGNOSES: dict[str, Code] = {}
for _line in _DX.strip().splitlines():
    _key, _, _rest = _line.partition("|")
    DIAGNOSES[_key] = _code(_rest)

_PX = """
central_line|02HV33Z|Insertion of Infusion Device into Superior Vena Cava, Percutaneous Approach|3893|Venous catheterization, not elsewhere classified|54|Other vascular catheterization; not heart
ventilation|5A1955Z|Respiratory Ventilation, Greater than 96 Consecutive Hours|9672|Continuous invasive mechanical ventilation for 96 consecutive hours or more|216|Respiratory intubation and mechanical ventilation
intubation|0BH17EZ|Insertion of Endotracheal Airway into Trachea, Via Natural or Artificial Opening|9604|Insertion of endotracheal tube|216|Respiratory intubation and mechanical ventilation
hemodialysis|5A1D70Z|Performance of Urinary Filtration, Intermittent, Less than 6 Hours Per Day|3995|Hemodialysis|58|Hemodialysis
cardiac_cath|4A023N7|Measurement of Cardiac Sampling and Pressure, Left Heart, Percutaneous Approach|3722|Left heart cardiac catheterization|47|Diagnostic cardiac catheterization; coronary arteriography
pci|027034Z|Dilation of Coronary Artery, One Artery with Drug-eluting Intraluminal Device, Percutaneous Approach|0066|Percutaneous transluminal coronary angioplasty [PTCA]|45|Percutaneous transluminal coronary angioplasty (PTCA)
egd|0DJ08ZZ|Inspection of Upper Intestinal Tract, Via Natural or Artificial Opening Endoscopic|4513|Other endoscopy of small intestine|70|Upper gastrointestinal endoscopy; biopsy
transfusion|30233N1|Transfusion of Nonautologous Red Blood Cells into Peripheral Vein, Percutaneous Approach|9904|Transfusion of packed cells|222|Blood transfusion
hip_replacement|0SR9019|Replacement of Right Hip Joint with Metal Synthetic Substitute, Cemented, Open Approach|8151|Total hip replacement|153|Hip replacement; total and partial
thrombectomy|03CG3ZZ|Extirpation of Matter from Intracranial Artery, Percutaneous Approach|3974|Endovascular removal of obstruction from head and neck vessel(s)|51|Endarterectomy; vessel of head and neck
debridement|0JDN0ZZ|Extraction of Right Lower Leg Subcutaneous Tissue and Fascia, Open Approach|8622|Excisional debridement of wound, infection, or burn|169|Debridement of wound; infection or burn
"""
PROCEDURES: dict[str, Code] = {}
for _line in _PX.strip().splitlines():
    _key, _, _rest = _line.partition("|")
    PROCEDURES[_key] = _code(_rest)


def _kv(spec: str) -> tuple[tuple[str, float], ...]:
    out = []
    for tok in spec.split():
        k, _, v = tok.partition("=")
        out.append((k, float(v)))
    return tuple(out)


def _t(spec: str) -> tuple[str, ...]:
    return tuple(spec.split())


def _cond(key, weight, severity, complaints, service, ward, icu, labs, vitals, drugs, ed_meds, procs, exams,
          micro, secondary, drg, hpi, course, elective=False) -> Condition:
    return Condition(key, DIAGNOSES[key], weight, severity, tuple(complaints.split(";")), service, ward, icu,
                     _kv(labs), _kv(vitals), _t(drugs), _t(ed_meds), _t(procs), _t(exams), _t(micro),
                     _t(secondary), drg, hpi, course, elective)


MICU, CCU, SICU, NICU, CVICU = ("Medical Intensive Care Unit (MICU)", "Coronary Care Unit (CCU)",
                                "Surgical Intensive Care Unit (SICU)", "Neuro Intensive Care Unit (Neuro ICU)",
                                "Cardiac Vascular Intensive Care Unit (CVICU)")

CONDITIONS: dict[str, Condition] = {c.key: c for c in [
    _cond("sepsis", 1.2, 0.62, "Fever;Altered mental status;Hypotension", "MED", "Medicine", MICU,
          "wbc=3 lactate=2 cr=2 bun=1.5 plt=-1.8 hco3=-1.5 ag=1.5 inr=1.5",
          "hr=2 map=-1.8 sbp=-1.5 temp=1.8 rr=1.5 spo2=-1",
          "vancomycin piptazo ns acetaminophen heparin_sq", "ns_bolus acetaminophen vancomycin piptazo",
          "central_line intubation", "cxr_portable ct_abd", "blood urine", "severe_sepsis",
          ("871", "SEPTICEMIA OR SEVERE SEPSIS W/O MV >96 HOURS W MCC"),
          "presents with fevers, rigors and confusion; found to be hypotensive with an elevated lactate",
          "Treated for sepsis with broad-spectrum antibiotics and IV fluids; cultures were followed"),
    _cond("pneumonia", 1.3, 0.42, "Cough;Dyspnea;Fever", "MED", "Medicine", MICU,
          "wbc=2.5 po2=-2 lactate=0.6 bun=0.8", "rr=1.8 spo2=-2 temp=1.5 hr=1.2",
          "ceftriaxone azithromycin acetaminophen heparin_sq", "ceftriaxone azithromycin acetaminophen",
          "intubation", "cxr_pa_lat cxr_portable ct_chest", "blood sputum", "",
          ("193", "SIMPLE PNEUMONIA AND PLEURISY W MCC"),
          "presents with productive cough, fevers and shortness of breath; chest imaging showed a consolidation",
          "Community-acquired pneumonia treated with ceftriaxone and azithromycin with improvement in oxygenation"),
    _cond("chf", 1.2, 0.45, "Dyspnea;Leg swelling;Orthopnea", "CMED", "Cardiology", CCU,
          "bnp=2 na=-1.5 cr=1.5 bun=1.5", "rr=1.2 spo2=-1.2 sbp=0.8 hr=0.8",
          "furosemide_iv metoprolol lisinopril heparin_sq", "furosemide_iv aspirin",
          "", "cxr_pa_lat echo", "", "",
          ("291", "HEART FAILURE AND SHOCK W MCC"),
          "presents with worsening dyspnea on exertion, orthopnea and bilateral leg swelling",
          "Acute on chronic systolic heart failure diuresed with IV furosemide to euvolemia"),
    _cond("aki", 0.8, 0.38, "Weakness;Decreased urine output;Nausea", "MED", "Medicine", MICU,
          "cr=4.5 bun=5 k=2.2 hco3=-2 phos=2", "map=-0.5",
          "ns sodium_bicarbonate", "ns_bolus", "hemodialysis", "renal_us", "urine", "",
          ("683", "RENAL FAILURE W CC"),
          "presents with poor oral intake, nausea and decreased urine output; creatinine markedly elevated",
          "Acute kidney injury managed with IV fluids and holding nephrotoxins; creatinine trended down"),
    _cond("copd_exac", 1.0, 0.4, "Dyspnea;Wheezing;Cough", "MED", "Medicine", MICU,
          "pco2=3 ph=-2 hco3=1.5 wbc=1", "rr=2 spo2=-2.2 hr=1.2",
          "prednisone duoneb azithromycin", "duoneb methylprednisolone",
          "intubation", "cxr_pa_lat", "sputum", "",
          ("190", "CHRONIC OBSTRUCTIVE PULMONARY DISEASE W MCC"),
          "presents with increased sputum, wheezing and dyspnea despite home inhalers",
          "COPD exacerbation treated with steroids, nebulizers and azithromycin"),
    _cond("dka", 0.5, 0.5, "Hyperglycemia;Nausea;Vomiting", "MED", "Medicine", MICU,
          "glu=20 hco3=-4 ag=2.5 k=1.5 ph=-3 na=-1", "hr=1.8 rr=1.8",
          "insulin_iv ns potassium_chloride", "ns_bolus ondansetron",
          "", "cxr_portable", "", "diabetes",
          ("637", "DIABETES W MCC"),
          "presents with polyuria, polydipsia, vomiting and a glucose above the meter range",
          "Diabetic ketoacidosis treated with insulin infusion and fluids; anion gap closed"),
    _cond("nstemi", 1.0, 0.48, "Chest pain;Dyspnea", "CMED", "Cardiology", CCU,
          "trop=3.5 ckmb=1.6 bnp=0.8", "hr=0.8 sbp=0.6",
          "aspirin heparin_iv atorvastatin metoprolol", "aspirin nitroglycerin heparin_iv",
          "cardiac_cath pci", "cxr_portable echo", "", "cad hyperlipidemia",
          ("281", "ACUTE MYOCARDIAL INFARCTION, DISCHARGED ALIVE W CC"),
          "presents with substernal chest pressure radiating to the left arm; troponin elevated",
          "NSTEMI treated with aspirin, heparin and statin; underwent cardiac catheterization"),
    _cond("gi_bleed", 0.9, 0.48, "Melena;Hematemesis;Weakness", "MED", "Medicine", MICU,
          "hgb=-4.5 hct=-4.5 bun=3 inr=1", "hr=2 sbp=-1.5 map=-1.5",
          "pantoprazole_iv ns prbc", "pantoprazole_iv ns_bolus",
          "egd transfusion", "ct_abd", "", "anemia",
          ("378", "G.I. HEMORRHAGE W CC"),
          "presents with black tarry stools and lightheadedness; hemoglobin dropped from baseline",
          "Upper GI bleed managed with IV pantoprazole and transfusion; EGD performed"),
    _cond("stroke", 0.8, 0.55, "Weakness;Slurred speech;Facial droop", "NMED", "Neurology", NICU,
          "glu=1.5", "sbp=2 map=1.5 gcs=-2",
          "aspirin atorvastatin heparin_sq", "aspirin",
          "thrombectomy", "ct_head mri_brain", "", "hypertension",
          ("065", "INTRACRANIAL HEMORRHAGE OR CEREBRAL INFARCTION W CC OR TPA IN 24 HRS"),
          "presents with acute onset right-sided weakness and slurred speech",
          "Acute ischemic stroke; started on aspirin and statin, evaluated by neurology"),
    _cond("uti", 1.0, 0.22, "Dysuria;Fever;Confusion", "MED", "Medicine", MICU,
          "wbc=2 uwbc=20 cr=1", "temp=1.2 hr=1",
          "ceftriaxone acetaminophen", "ceftriaxone acetaminophen",
          "", "renal_us", "urine", "",
          ("690", "KIDNEY AND URINARY TRACT INFECTIONS W/O MCC"),
          "presents with dysuria, urinary frequency and low-grade fevers",
          "Urinary tract infection treated with ceftriaxone, narrowed per culture sensitivities"),
    _cond("cellulitis", 0.7, 0.18, "Leg redness;Leg swelling;Fever", "MED", "Medicine", MICU,
          "wbc=2", "temp=1 hr=0.8",
          "cefazolin vancomycin acetaminophen", "cefazolin",
          "debridement", "le_us", "blood", "",
          ("603", "CELLULITIS W/O MCC"),
          "presents with spreading erythema, warmth and swelling of the right lower leg",
          "Cellulitis treated with IV antibiotics with regression of erythema"),
    _cond("afib_rvr", 0.8, 0.3, "Palpitations;Dyspnea;Chest pain", "CMED", "Cardiology", CCU,
          "bnp=1 inr=1", "hr=3.5 sbp=-0.5",
          "diltiazem metoprolol apixaban", "diltiazem metoprolol",
          "", "cxr_pa_lat echo", "", "anticoag",
          ("309", "CARDIAC ARRHYTHMIA AND CONDUCTION DISORDERS W CC"),
          "presents with palpitations and a rapid irregular heart rate",
          "Atrial fibrillation with rapid ventricular response rate-controlled and anticoagulated"),
    _cond("syncope", 0.9, 0.15, "Syncope;Dizziness;Fall", "MED", "Medicine", CCU,
          "hgb=-0.5", "sbp=-0.8",
          "ns", "ns_bolus", "", "ct_head", "", "",
          ("312", "SYNCOPE AND COLLAPSE"),
          "presents after a witnessed loss of consciousness while standing",
          "Syncope work-up with telemetry and orthostatic vitals was unrevealing"),
    _cond("chest_pain", 1.1, 0.1, "Chest pain;Epigastric pain", "CMED", "Observation", CCU,
          "", "hr=0.3",
          "aspirin", "aspirin nitroglycerin", "", "cxr_pa_lat", "", "",
          ("313", "CHEST PAIN"),
          "presents with intermittent atypical chest pain at rest",
          "Serial troponins were negative and a stress test was arranged as an outpatient"),
    _cond("hip_fracture", 0.6, 0.35, "Fall;Hip pain", "ORTHO", "Orthopaedics", SICU,
          "hgb=-1.5 hct=-1.5 wbc=1", "hr=0.8",
          "morphine enoxaparin acetaminophen cefazolin", "morphine",
          "hip_replacement transfusion", "hip_xr", "", "",
          ("481", "HIP AND FEMUR PROCEDURES EXCEPT MAJOR JOINT W CC"),
          "presents after a mechanical fall with right hip pain and inability to bear weight",
          "Right femoral neck fracture repaired by orthopaedics; mobilised with physical therapy"),
    _cond("hip_oa", 0.5, 0.1, "Hip pain", "ORTHO", "Orthopaedics", SICU,
          "hgb=-1", "",
          "cefazolin enoxaparin acetaminophen", "", "hip_replacement", "hip_xr", "", "",
          ("470", "MAJOR JOINT REPLACEMENT OR REATTACHMENT OF LOWER EXTREMITY W/O MCC"),
          "presents for elective right total hip arthroplasty for osteoarthritis",
          "Underwent uncomplicated right total hip arthroplasty", elective=True),
]}


@dataclass(frozen=True)
class Chronic:
    key: str  # DIAGNOSES key
    prevalence: float  # at age 60
    age_slope: float  # added prevalence per year above 60
    home_drugs: tuple[str, ...]
    labs: tuple[tuple[str, float], ...]
    history: str  # past-medical-history line


CHRONIC: tuple[Chronic, ...] = (
    Chronic("hypertension", 0.45, 0.008, ("lisinopril",), (), "Hypertension"),
    Chronic("diabetes", 0.22, 0.004, ("metformin",), _kv("glu=2"), "Type 2 diabetes mellitus"),
    Chronic("hyperlipidemia", 0.35, 0.006, ("atorvastatin",), (), "Hyperlipidemia"),
    Chronic("ckd", 0.12, 0.005, (), _kv("cr=1.8 bun=1.2 hgb=-0.8"), "Chronic kidney disease stage III"),
    Chronic("cad", 0.15, 0.006, ("aspirin",), (), "Coronary artery disease"),
    Chronic("copd", 0.12, 0.003, ("tiotropium",), _kv("pco2=1"), "COPD"),
    Chronic("tobacco", 0.18, -0.002, (), (), "Tobacco use"),
    Chronic("gerd", 0.18, 0.001, ("omeprazole",), (), "GERD"),
    Chronic("depression", 0.15, 0.0, ("sertraline",), (), "Depression"),
    Chronic("chronic_afib", 0.08, 0.005, ("apixaban",), (), "Atrial fibrillation on anticoagulation"),
)
