//! A deterministic synthetic US population for matching benchmarks and
//! evaluation, and noisy queries against it with the truth attached.
//!
//! Everything here is the project's own: the name, street, city and clinic
//! lists were written for this module (no dataset was copied), frequencies
//! follow a Zipf-Mandelbrot law over each list plus a long tail of made-up
//! rare names, and the only source of randomness is the seeded splitmix64
//! generator below, so one seed always gives the same people and queries.
//!
//! The population looks like an IIS's: households of parents and children
//! sharing a family name, address, phone, guardian and mother's maiden name;
//! birth dates from 1935 to 2025 weighted toward children; about 3% of
//! children are twins (same birth date and household, `multiple_birth`,
//! birth order 1 and 2, different first names); one MRN per person from one
//! of 50 clinics, an SSN on about 30%, and the usual junk (a clinic's main
//! phone as the patient's, placeholder phones, missing fields).
//!
//! A query ([`Queries`]) is either a noisy copy of a known person (typos,
//! nicknames, a missing middle name, a slipped or swapped birth date, another
//! clinic's MRN, a new address, a missing phone, ...) or, one time in five, a
//! person not in the population (sometimes a newborn sibling of a known
//! household, the hardest kind); it carries the true person so a benchmark
//! can report accuracy ([`Accuracy`]) alongside speed.

pub mod bench;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

pub use matching::rng::Rng;
use matching::{BirthDate, Grade, PatientRecord, RecordIdentifier};

/// The day the population is drawn on: nobody is born after it.
const TODAY: (u16, u8, u8) = (2025, 10, 31);
/// Birth years from this one on draw given names from the modern lists.
const MODERN_FROM: u16 = 1995;

// Population shape.
const KIDS_HOUSEHOLD: f64 = 0.62;
const KIDS_PER_HOUSEHOLD: &[(usize, f64)] =
    &[(1, 0.38), (2, 0.36), (3, 0.17), (4, 0.07), (5, 0.02)];
/// Per birth: two children instead of one (about 3% of children are twins).
const TWIN_BIRTH: f64 = 0.0155;
const MOTHER_IN_REGISTRY: f64 = 0.30;
const FATHER_IN_REGISTRY: f64 = 0.20;
const RARE_GIVEN: f64 = 0.18;
const RARE_FAMILY: f64 = 0.33;
const COMPOUND_FAMILY: f64 = 0.03;
const SSN_PRESENT: f64 = 0.30;
const PHONE_PRESENT: f64 = 0.92;
const CLINIC_PHONE: f64 = 0.015;
const PLACEHOLDER_PHONE: f64 = 0.005;
const OTHER_CLINIC: f64 = 0.15;

// Queries.
const NEW_PERSON: f64 = 0.20;
/// Of the new persons, this share are a new child of a known household.
const NEW_SIBLING: f64 = 0.25;

/// Ranks drawn with probability proportional to `1 / (rank + q)^s`
/// (Zipf-Mandelbrot), or to given weights.
#[derive(Debug)]
struct Zipf {
    cumulative: Vec<f64>,
    total: f64,
}

impl Zipf {
    fn mandelbrot(n: usize, q: f64, s: f64) -> Zipf {
        Zipf::weights((1..=n).map(|k| 1.0 / (k as f64 + q).powf(s)))
    }

    fn weights(weights: impl Iterator<Item = f64>) -> Zipf {
        let mut total = 0.0;
        let cumulative = weights
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Zipf { cumulative, total }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit() * self.total;
        self.cumulative
            .partition_point(|c| *c <= u)
            .min(self.cumulative.len() - 1)
    }
}

// ---------------------------------------------------------------------------
// Lists (written for this module; rough popularity order, most common first)

#[rustfmt::skip]
const FAMILY: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
    "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed",
    "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes",
    "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander",
    "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes",
    "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray",
    "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods",
    "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker",
    "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez",
    "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Muñoz", "Hunt", "Hicks", "Holmes", "Palmer",
    "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills",
    "Meyer", "Rice", "Schmidt", "Garza", "Daniels", "Ferguson", "Nichols", "Stephens", "Soto",
    "Weaver", "Ryan", "Gardner", "Payne", "Grant", "Dunn", "Kelley", "Spencer", "Hawkins",
    "Arnold", "Pierce", "Vazquez", "Hansen", "Peters", "Santos", "Hart", "Bradley", "Knight",
    "Elliott", "Cunningham", "Duncan", "Armstrong", "Hudson", "Carroll", "Lane", "Riley",
    "Andrews", "Alvarado", "Ray", "Delgado", "Berry", "Perkins", "Hoffman", "Johnston", "Matthews",
    "Peña", "Richards", "Contreras", "Willis", "Carpenter", "Lawrence", "Sandoval", "Guerrero",
    "George", "Chapman", "Rios", "Estrada", "Ortega", "Watkins", "Greene", "Núñez", "Wheeler",
    "Valdez", "Harper", "Burke", "Larson", "Santiago", "Maldonado", "Morrison", "Franklin",
    "Carlson", "Austin", "Dominguez", "Carr", "Lawson", "Jacobs", "O'Brien", "Lynch", "Singh",
    "Vega", "Bishop", "Montgomery", "Oliver", "Jensen", "Harvey", "Williamson", "Gilbert", "Dean",
    "Sims", "Espinoza", "Howell", "Li", "Wong", "Reid", "Hanson", "Le", "McCoy", "Garrett",
    "Burton", "Fuller", "Wang", "Weber", "Welch", "Rojas", "Lucas", "Marquez", "Fields", "Park",
    "Yang", "Little", "Banks", "Padilla", "Day", "Walsh", "Bowman", "Schultz", "Luna", "Fowler",
    "Mejia", "Davidson", "Acosta", "Brewer", "May", "Holland", "Juarez", "Newman", "Pearson",
    "Curtis", "Cortez", "Douglas", "Schneider", "Joseph", "Barrett", "Navarro", "Figueroa",
    "Keller", "Avila", "Wade", "Molina", "Stanley", "Hopkins", "Campos", "Barnett", "Bates",
    "Chambers", "Caldwell", "Beck", "Lambert", "Miranda", "Byrd", "Craig", "Ayala", "Lowe",
    "Frazier", "Powers", "Neal", "Leonard", "Gregory", "Carrillo", "Sutton", "Fleming", "Rhodes",
    "Shelton", "Schwartz", "Norris", "Jennings", "Watts", "Duran", "Walters", "Cohen", "McDaniel",
    "Moran", "Parks", "Steele", "Vaughn", "Becker", "Holt", "De Leon", "Barker", "Terry", "Hale",
    "Kowalski", "Nowak", "Wojcik", "Kaminski", "Lewandowski", "Zielinski", "Okafor", "Adeyemi",
    "Mensah", "Haddad", "Khan", "Ali", "Ahmed", "Hussain", "Yilmaz", "Ivanov", "Rossi", "Russo",
    "Esposito", "Romano", "Nakamura", "Tanaka", "Pham", "Vu", "Hoang", "Xiong", "Vang", "Yazzie",
    "Begay", "O'Connell", "MacDonald", "VanderMolen", "Bouchard", "Lefebvre", "Schaefer", "Kuiper",
];

#[rustfmt::skip]
const FEMALE_MODERN: &[&str] = &[
    "Emma", "Olivia", "Sophia", "Isabella", "Ava", "Mia", "Emily", "Abigail", "Madison",
    "Charlotte", "Harper", "Sofia", "Avery", "Elizabeth", "Amelia", "Evelyn", "Ella", "Chloe",
    "Victoria", "Aubrey", "Grace", "Zoey", "Natalie", "Addison", "Lillian", "Brooklyn", "Lily",
    "Hannah", "Layla", "Scarlett", "Aria", "Zoe", "Samantha", "Anna", "Leah", "Audrey", "Ashley",
    "Alyssa", "Savannah", "Allison", "Aaliyah", "Gabriella", "Camila", "Nora", "Hailey", "Riley",
    "Stella", "Paisley", "Skylar", "Violet", "Claire", "Bella", "Aurora", "Lucy", "Sarah",
    "Kaylee", "Alexa", "Genesis", "Caroline", "Kennedy", "Kylie", "Peyton", "Ellie", "Madelyn",
    "Autumn", "Nevaeh", "Hazel", "Maya", "Serenity", "Arianna", "Ruby", "Eleanor", "Naomi",
    "Piper", "Alexis", "Taylor", "Mackenzie", "Julia", "Jasmine", "Faith", "Katherine", "Brianna",
    "Sydney", "Morgan", "Isabelle", "Mila", "Luna", "Penelope", "Everly", "Willow", "Emilia",
    "Quinn", "Ivy", "Nova", "Eliana", "Valentina", "Athena", "Jade", "Gianna", "Josephine",
    "Delilah", "Isla", "Madeline", "Kinsley", "Cora", "Kendall", "Lydia", "Jocelyn", "Trinity",
    "Destiny", "Mariah", "Jordyn", "Adalynn", "Makayla", "Vanessa", "Londyn", "Juliana", "Ximena",
    "Brielle", "Reagan", "Sadie", "Emery", "Daisy", "Valeria", "Mya", "Aubree", "Harmony", "Lilly",
    "Kayla", "Aliyah", "Lauren", "Brooke", "Jayla", "Khloe", "Rylee", "Eva", "Molly", "Adeline",
    "Liliana", "Mckenzie", "Gabrielle", "Sienna", "Kaitlyn", "Jazmin", "Alexandra", "Nicole",
    "Camille", "Melanie", "Mariana", "Giselle", "Esther", "Lyla", "Vivian", "Iris", "Emerson",
    "Raelynn", "Alaina", "Ariel", "Arya", "Amaya", "Kira", "Makenna", "Elise", "Talia", "Cecilia",
    "Juniper", "Tessa", "Brynn", "Harlow", "Margot", "Oaklynn", "Remi", "Sloane", "Wren", "Ayla",
    "Leilani", "Kehlani", "Itzel", "Yaretzi",
];

#[rustfmt::skip]
const FEMALE_CLASSIC: &[&str] = &[
    "Mary", "Patricia", "Jennifer", "Linda", "Barbara", "Susan", "Jessica", "Margaret", "Karen",
    "Nancy", "Lisa", "Betty", "Dorothy", "Sandra", "Donna", "Carol", "Michelle", "Deborah",
    "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy", "Shirley", "Angela",
    "Helen", "Brenda", "Pamela", "Amanda", "Melissa", "Heather", "Diane", "Ruth", "Julie", "Joyce",
    "Virginia", "Christine", "Kelly", "Joan", "Judith", "Megan", "Cheryl", "Andrea", "Martha",
    "Frances", "Gloria", "Teresa", "Ann", "Janet", "Catherine", "Carolyn", "Rachel", "Maria",
    "Denise", "Marie", "Alice", "Diana", "Kathryn", "Beverly", "Theresa", "Doris", "Tiffany",
    "Jacqueline", "Christina", "Janice", "Kimberly", "Judy", "Rose", "Lori", "Tammy", "Wanda",
    "Marilyn", "Crystal", "Jean", "Danielle", "Erin", "April", "Peggy", "Dawn", "Tracy", "Wendy",
    "Connie", "Sherry", "Lois", "Norma", "Paula", "Phyllis", "Annie", "Robin", "Rita", "Leslie",
    "Tina", "Anita", "Monica", "Valerie", "Carla", "Kristen", "Tonya", "Eileen", "Bonnie", "Vera",
    "Ellen", "Sheila", "Gail", "Joanne", "Yolanda", "Lorraine", "Renee", "Holly", "Rosa", "Cindy",
    "Jill", "Stacy", "Erica", "Colleen", "Carmen", "Ramona", "Sylvia", "Irene", "Edna", "Ethel",
    "Loretta", "Geraldine", "Lucille", "Darlene", "Josefina", "Guadalupe", "Yvonne", "Sonia",
    "Alicia", "Veronica", "Brandy", "Misty", "Heidi", "Kristin", "Courtney", "Lindsay", "Kristina",
    "Tara", "Natasha", "Bridget", "Dana", "Shannon", "Melinda", "Regina", "Gwendolyn",
    "Bernadette", "Marcia", "Roberta", "Jeanette", "Elaine", "Priscilla", "Delores", "Mildred",
    "Agnes", "Florence", "Hilda", "Marjorie", "Rosemary", "Constance", "Muriel", "Beatrice",
    "Eunice", "Gladys", "Harriet", "Imogene", "Juanita",
];

#[rustfmt::skip]
const MALE_MODERN: &[&str] = &[
    "Liam", "Noah", "Oliver", "Elijah", "William", "James", "Benjamin", "Lucas", "Henry",
    "Alexander", "Mason", "Michael", "Ethan", "Daniel", "Jacob", "Logan", "Jackson", "Levi",
    "Sebastian", "Mateo", "Jack", "Owen", "Theodore", "Aiden", "Samuel", "Joseph", "John", "David",
    "Wyatt", "Matthew", "Luke", "Asher", "Carter", "Julian", "Grayson", "Leo", "Jayden", "Gabriel",
    "Isaac", "Lincoln", "Anthony", "Hudson", "Dylan", "Ezra", "Thomas", "Charles", "Christopher",
    "Jaxon", "Maverick", "Josiah", "Isaiah", "Andrew", "Elias", "Joshua", "Nathan", "Caleb",
    "Ryan", "Adrian", "Miles", "Eli", "Nolan", "Christian", "Aaron", "Cameron", "Ezekiel",
    "Colton", "Luca", "Landon", "Hunter", "Jonathan", "Santiago", "Axel", "Easton", "Cooper",
    "Jeremiah", "Angel", "Roman", "Connor", "Jameson", "Greyson", "Jordan", "Ian", "Carson",
    "Jaxson", "Leonardo", "Nicholas", "Dominic", "Austin", "Everett", "Brooks", "Xavier", "Kai",
    "Jose", "Parker", "Adam", "Jace", "Wesley", "Kayden", "Silas", "Bennett", "Declan", "Waylon",
    "Weston", "Evan", "Emmett", "Micah", "Ryder", "Beau", "Damian", "Brayden", "Gael", "Rowan",
    "Harrison", "Bryson", "Sawyer", "Amir", "Kingston", "Jason", "Giovanni", "Vincent", "Ayden",
    "Chase", "Myles", "Diego", "Nathaniel", "Legend", "Jonah", "River", "Tyler", "Cole", "Braxton",
    "George", "Milo", "Zachary", "Ashton", "Luis", "Jasper", "Kaiden", "Adriel", "Gavin",
    "Bentley", "Zion", "Juan", "Maxwell", "Max", "Ryker", "Carlos", "Emmanuel", "Jayce", "Lorenzo",
    "Ivan", "Jude", "August", "Kevin", "Malachi", "Elliott", "Rhett", "Archer", "Karter", "Luka",
    "Thiago", "Brandon", "Camden", "Justin", "Jesus", "Maddox", "Theo", "Enzo", "Matteo",
    "Emiliano", "Hayden", "Finn", "Brody", "Antonio", "Abel", "Tristan", "Graham", "Zayden",
    "Judah", "Xander", "Miguel", "Atlas", "Barrett", "Tucker", "Alan", "Edward", "Leon", "Dawson",
    "Eric", "Ace", "Victor", "Abraham", "Nicolas", "Jesse", "Charlie", "Patrick", "Walker", "Joel",
    "Beckett", "Blake", "Alejandro", "Grant", "Oscar", "Matias", "Amari", "Andres", "Arlo", "Colt",
    "Kyrie", "Felix", "Preston", "Marcus", "Holden", "Emilio", "Remington", "Jeremy", "Kaleb",
    "Brantley", "Bryce", "Knox", "Israel", "Phoenix", "Nash", "Griffin", "Caden", "Kyler", "Hayes",
    "Rafael", "Beckham", "Javier", "Maximus", "Simon", "Omar", "Kash", "Zane", "Aidan", "Paxton",
    "Tobias", "Ronan", "Dallas", "Jorge", "Josue", "Khalil", "Jett", "Zander", "Andre", "Cohen",
    "Hendrix", "Colin", "Malcolm", "Lennox", "Jaden", "Bodhi", "Francisco", "Cody", "Erick",
    "Atticus", "Dante", "Cruz",
];

#[rustfmt::skip]
const MALE_CLASSIC: &[&str] = &[
    "Robert", "Richard", "Donald", "Kenneth", "Steven", "Paul", "Mark", "Brian", "Gary", "Ronald",
    "Timothy", "Jeffrey", "Larry", "Frank", "Scott", "Raymond", "Gregory", "Dennis", "Jerry",
    "Douglas", "Peter", "Harold", "Carl", "Roger", "Arthur", "Terry", "Lawrence", "Albert", "Joe",
    "Willie", "Ralph", "Roy", "Eugene", "Louis", "Wayne", "Billy", "Russell", "Bobby", "Howard",
    "Fred", "Phillip", "Johnny", "Craig", "Stanley", "Shawn", "Todd", "Earl", "Jimmy", "Danny",
    "Glenn", "Bruce", "Dale", "Leonard", "Rodney", "Curtis", "Norman", "Allen", "Marvin", "Walter",
    "Martin", "Travis", "Lee", "Melvin", "Alfred", "Francis", "Bradley", "Herbert", "Frederick",
    "Ray", "Edwin", "Don", "Eddie", "Ricky", "Troy", "Randall", "Barry", "Bernard", "Mario",
    "Leroy", "Ernest", "Duane", "Stephen", "Gerald", "Brent", "Keith", "Ronnie", "Clarence",
    "Tony", "Dwayne", "Harry", "Lloyd", "Gordon", "Dean", "Jimmie", "Floyd", "Herman", "Lonnie",
    "Clifford", "Warren", "Derrick", "Chad", "Darrell", "Jon", "Tom", "Calvin", "Marc", "Alvin",
    "Jim", "Vernon", "Lewis", "Glen", "Jay", "Gilbert", "Kurt", "Wallace", "Gene", "Dustin",
    "Shane", "Ross", "Roland", "Rick", "Reginald", "Kirk", "Lester", "Milton", "Clyde", "Cecil",
    "Elmer", "Chester", "Salvador", "Roberto", "Manuel", "Ricardo", "Ramon", "Fernando", "Pedro",
    "Raul", "Armando", "Enrique", "Hector", "Ruben", "Sergio", "Alfredo", "Arturo", "Julio",
    "Guillermo", "Wade", "Neil", "Nelson", "Maurice", "Dwight", "Lyle", "Brett", "Marshall",
    "Darren", "Jerome", "Randy", "Greg", "Steve", "Mike", "Rex", "Franklin", "Ted", "Byron",
    "Irvin", "Morris", "Otis", "Virgil", "Homer", "Willard", "Orville", "Rufus", "Luther", "Percy",
    "Wilbur", "Harvey", "Clinton", "Kelvin", "Terrence", "Lamar", "Cedric", "Demetrius", "Jamal",
    "Tyrone", "Darnell", "Reggie",
];

/// Middle names chosen more often than the given-name lists would say.
#[rustfmt::skip]
const MIDDLE_FEMALE: &[&str] = &[
    "Marie", "Ann", "Lynn", "Rose", "Grace", "Mae", "Elizabeth", "Jean", "Louise", "Nicole",
];
#[rustfmt::skip]
const MIDDLE_MALE: &[&str] = &[
    "James", "Lee", "Michael", "Allen", "Joseph", "Ray", "Alexander", "Wayne", "Dean", "Edward",
];

/// Pieces of made-up rare names: the long tail of an IIS's names.
#[rustfmt::skip]
const RARE_START: &[&str] = &[
    "Ja", "Ka", "Ma", "Bra", "Jo", "Ky", "La", "Ry", "Za", "Na", "Ta", "Da", "Ash", "Bel", "Cam",
    "El", "Jax", "Kay", "Lan", "Mar", "Ni", "Ro", "Sha", "Tre", "Xa", "Am", "Bri", "Cal", "Dez",
    "Es", "Gi", "Ha", "Jen", "Kal", "Lo", "Mak", "Ny", "Or", "Pres", "Sa",
];
const RARE_MIDDLE: &[&str] = &["", "ly", "ri", "na", "de", "la", "ve", "li", "mi", "ren"];
#[rustfmt::skip]
const RARE_END_F: &[&str] = &[
    "lyn", "ah", "ia", "elle", "ee", "ani", "ara", "ette", "ina", "ley", "iyah", "ella", "ise",
];
#[rustfmt::skip]
const RARE_END_M: &[&str] = &[
    "den", "son", "ton", "ric", "an", "ias", "ell", "on", "ar", "o", "ius", "ik", "iel",
];
#[rustfmt::skip]
const RARE_FAMILY_START: &[&str] = &[
    "Ab", "Bran", "Cal", "Dor", "Fen", "Gar", "Hol", "Kel", "Lind", "Mar", "Nor", "Pem", "Ros",
    "Stan", "Thorn", "Wil", "Ash", "Brook", "Cran", "Dal", "Eld", "Fair", "Hart", "Kings", "Law",
    "Mill", "Ox", "Rad", "Sel", "Whit", "Bel", "Cor", "Dun", "Gil", "Har", "Lan", "Mor", "Pen",
    "Ver", "Wal",
];
const RARE_FAMILY_MIDDLE: &[&str] = &["", "en", "er", "in", "ow", "a", "el", "bur", "ing", "is"];
#[rustfmt::skip]
const RARE_FAMILY_END: &[&str] = &[
    "berg", "field", "ley", "ton", "wood", "man", "son", "ford", "well", "by", "stein", "ski",
    "er", "ham", "worth", "ridge", "dale", "cott", "ling", "shaw", "mann", "ek", "ova", "ez", "ic",
];

/// Invented towns of one state, with how many ZIP codes each has (a town's
/// share of the population follows its ZIP count).
#[rustfmt::skip]
const CITIES: &[(&str, usize)] = &[
    ("Grand Harbor", 38), ("Riverton", 22), ("Fairhaven", 14), ("Kentwood Falls", 12),
    ("Maple Rapids", 12), ("Cedar Bluff", 10), ("Northport", 9), ("Ashford", 9), ("Lakeview", 8),
    ("Pine Ridge", 8), ("Millbrook", 7), ("East Lansford", 7), ("Silver Creek", 6), ("Oakdale", 6),
    ("Bay Point", 6), ("Westfield", 5), ("Clearwater", 5), ("Hollis", 5), ("Brighton Mills", 5),
    ("Stony Point", 4), ("Forest Glen", 4), ("Harrow", 4), ("Wexley", 4), ("Benton Shores", 4),
    ("Red Oak", 3), ("Elmira Springs", 3), ("Greenvale", 3), ("Mount Carver", 3), ("Alder", 3),
    ("Sandusky Bay", 3), ("Kirkwood", 3), ("Port Lucas", 3), ("Three Forks", 2), ("Halsey", 2),
    ("Owosso Lake", 2), ("Birch Run", 2), ("Caro Junction", 2), ("Dexter Hills", 2),
    ("Fenwick", 2), ("Gladstone", 2), ("Hartwell", 2), ("Ionia Falls", 2), ("Jasper", 2),
    ("Kingsley", 2), ("Linden", 2), ("Marlow", 2), ("Newaygo Flats", 1), ("Ortonville", 1),
    ("Petoskey Point", 1), ("Quincy", 1), ("Rosebush", 1), ("Sheridan", 1), ("Tustin", 1),
    ("Union Pier", 1), ("Vestaburg", 1), ("Wolverine", 1), ("Yale", 1), ("Zeeland Creek", 1),
    ("Alba", 1), ("Brethren", 1),
];
const STATE: &str = "MI";
#[rustfmt::skip]
const AREA_CODES: &[&str] = &[
    "517", "616", "269", "231", "989", "906", "810", "734", "248", "586", "313", "947",
];

#[rustfmt::skip]
const STREETS: &[&str] = &[
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lincoln", "Jefferson", "Madison",
    "Park", "Lake", "Hill", "Church", "Main", "High", "Center", "Walnut", "Spruce", "Chestnut",
    "Willow", "Birch", "Ash", "Hickory", "Sycamore", "Poplar", "Cherry", "Dogwood", "Magnolia",
    "Sunset", "Ridge", "River", "Meadow", "Forest", "Highland", "Valley", "Spring", "Mill",
    "Franklin", "Adams", "Jackson", "Monroe", "Grant", "Wilson", "Harrison", "Garfield",
    "Cleveland", "Hamilton", "Warren", "Sherman", "Clinton", "Union", "Liberty", "Prospect",
    "Pleasant", "Woodland", "Orchard", "Grove", "Cottage", "Holly", "Laurel", "Rosewood",
    "Fairview", "Lakeview", "Riverside", "Hillcrest", "Brookside", "Greenfield", "Westwood",
    "Eastwood", "Northfield", "Southview", "Shady", "Bay", "Harbor", "Beach", "Dune", "Pinecrest",
    "Crestview", "Glenwood", "Kensington", "Windsor", "Stratford", "Hampton", "Cambridge",
    "Oxford", "Devonshire", "Canterbury", "Ashbury", "Bristol", "Dover", "Clover", "Heather",
    "Juniper", "Aspen", "Sequoia", "Tamarack", "Cypress", "Hawthorne", "Mulberry", "Plum", "Apple",
    "Peach", "Quail", "Robin", "Cardinal", "Bluebird", "Sparrow", "Eagle", "Falcon", "Hawk", "Fox",
    "Deer", "Elk", "Bear", "Otter", "Beaver", "Heron", "Pheasant", "Partridge", "Turkey Run",
    "Stone", "Rock", "Boulder", "Granite", "Quarry", "Railroad", "Depot", "Market", "School",
    "College", "University", "Academy", "Mission", "Vine", "Ivy", "Wisteria",
];
/// Street kinds: (abbreviation, word).
#[rustfmt::skip]
const STREET_KINDS: &[(&str, &str)] = &[
    ("St", "Street"), ("Ave", "Avenue"), ("Rd", "Road"), ("Dr", "Drive"), ("Ln", "Lane"),
    ("Ct", "Court"), ("Blvd", "Boulevard"), ("Way", "Way"), ("Pl", "Place"), ("Ter", "Terrace"),
    ("Cir", "Circle"), ("Pkwy", "Parkway"), ("Trl", "Trail"),
];
const DIRECTIONS: &[(&str, &str)] = &[("N", "North"), ("S", "South"), ("E", "East"), ("W", "West")];

/// Assigning authorities (HL7 PID-3.4 namespace ids), largest first.
#[rustfmt::skip]
const CLINICS: &[&str] = &[
    "GRANDHARBORHEALTH", "RIVERTONPEDS", "LAKESHOREPEDIATRICS", "FAIRHAVENFM", "CEDARBLUFFCHC",
    "NORTHPORTMED", "MAPLERAPIDSPEDS", "ASHFORDCLINIC", "KENTWOODFAMILY", "PINERIDGEHC",
    "MILLBROOKPEDS", "SILVERCREEKMED", "OAKDALEFP", "BAYPOINTCHC", "WESTFIELDPEDS", "HOLLISFM",
    "CLEARWATERHEALTH", "BRIGHTONMILLSPC", "STONYPOINTMED", "FORESTGLENPEDS", "HARROWFAMILY",
    "WEXLEYCLINIC", "BENTONSHORESHC", "REDOAKPEDS", "ELMIRAFM", "GREENVALECHC", "MTCARVERMED",
    "ALDERFAMILY", "SANDUSKYBAYPC", "KIRKWOODPEDS", "PORTLUCASHC", "THREEFORKSFM", "HALSEYCLINIC",
    "BIRCHRUNMED", "DEXTERHILLSPEDS", "FENWICKFAMILY", "GLADSTONECHC", "HARTWELLPC", "JASPERMED",
    "KINGSLEYPEDS", "LINDENFM", "MARLOWHEALTH", "COUNTYHDPHN", "TRIBALHEALTHCTR",
    "MIGRANTHEALTHNW", "SCHOOLBASEDHC", "URGENTCARENORTH", "RETAILPHARMA", "RETAILPHARMB",
    "MOBILEVAXUNIT",
];
const MRN_PREFIXES: &[&str] = &["E", "M", "PT", "MR", "A"];

const PLACEHOLDER_PHONES: &[&str] = &["000-000-0000", "999-999-9999", "(555) 555-5555"];

/// QWERTY neighbours, for substitution typos.
#[rustfmt::skip]
const KEY_NEIGHBOURS: [&str; 26] = [
    "qwsz", "vghn", "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb", "ujko", "huikmn",
    "jiolm", "kop", "njk", "bhjm", "iklp", "ol", "wa", "edft", "awedxz", "rfgy", "yhji", "cfgb",
    "qase", "zsdc", "tghu", "asx",
];

// ---------------------------------------------------------------------------
// Tables built once

#[derive(Debug)]
struct Tables {
    family: Zipf,
    female: Zipf,
    male: Zipf,
    cities: Zipf,
    /// First ZIP code of each city.
    city_zip: Vec<u32>,
    clinics: Zipf,
    /// Folded canonical given name → the nicknames and variants the
    /// project's nickname table lists for it.
    nicknames: FxHashMap<String, Vec<String>>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut city_zip = Vec::with_capacity(CITIES.len());
        let mut next = 48_001;
        for (_, zips) in CITIES {
            city_zip.push(next);
            next += 3 * *zips as u32 + 2;
        }
        let mut nicknames: FxHashMap<String, Vec<String>> = FxHashMap::default();
        for line in matching::nicknames::BUILT_IN.lines() {
            let Some((canonical, nicks)) = line.split_once('\t') else {
                continue;
            };
            if canonical.starts_with('#') {
                continue;
            }
            let entry = nicknames.entry(canonical.to_ascii_uppercase()).or_default();
            entry.extend(
                nicks
                    .split(',')
                    .filter(|n| n.len() > 1)
                    .map(str::to_ascii_uppercase),
            );
        }
        Tables {
            family: Zipf::mandelbrot(FAMILY.len(), 20.0, 1.0),
            female: Zipf::mandelbrot(FEMALE_MODERN.len() + FEMALE_CLASSIC.len(), 8.0, 1.0),
            male: Zipf::mandelbrot(MALE_MODERN.len() + MALE_CLASSIC.len(), 8.0, 1.0),
            cities: Zipf::weights(CITIES.iter().map(|(_, zips)| *zips as f64)),
            city_zip,
            clinics: Zipf::mandelbrot(CLINICS.len(), 3.0, 1.0),
            nicknames,
        }
    })
}

// ---------------------------------------------------------------------------
// Building blocks

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sex {
    F,
    M,
}

impl Sex {
    fn code(self) -> &'static str {
        match self {
            Sex::F => "F",
            Sex::M => "M",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    fn iso(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    fn compact(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
}

fn days_in(year: u16, month: u8) -> u8 {
    (28..=31)
        .rev()
        .find(|d| BirthDate::new(year, month, *d).is_some())
        .unwrap_or(28)
}

#[derive(Clone, Debug)]
struct Address {
    house: u32,
    direction: Option<usize>,
    street: usize,
    kind: usize,
    apartment: Option<u32>,
    city: usize,
    zip: u32,
}

/// How a sender writes names and streets.
#[derive(Clone, Copy, Debug)]
struct Style {
    upper: bool,
    long_words: bool,
}

impl Address {
    fn street_line(&self, style: Style) -> String {
        let word = |(short, long): (&'static str, &'static str)| {
            if style.long_words {
                long
            } else {
                short
            }
        };
        let mut line = self.house.to_string();
        if let Some(d) = self.direction {
            line.push(' ');
            line.push_str(word(DIRECTIONS[d]));
        }
        line.push(' ');
        line.push_str(STREETS[self.street]);
        line.push(' ');
        line.push_str(word(STREET_KINDS[self.kind]));
        if let Some(apt) = self.apartment {
            line.push_str(&format!(" Apt {apt}"));
        }
        cased(&line, style)
    }
}

fn cased(text: &str, style: Style) -> String {
    if style.upper {
        text.to_uppercase()
    } else {
        text.to_owned()
    }
}

/// An MRN format and the clinic's counter.
#[derive(Clone, Copy, Debug)]
enum MrnStyle {
    /// Zero-padded sequential numbers, `width` digits.
    Sequential { width: usize },
    /// A letter prefix and sequential digits (`E0012345`).
    Prefixed { prefix: &'static str, width: usize },
    /// Random digits (no leading zero).
    Random { width: usize },
}

#[derive(Clone, Debug)]
struct Clinic {
    system: &'static str,
    style: MrnStyle,
    next: u64,
    /// Numbers are handed out with random gaps up to this (patients the
    /// IIS never hears about).
    max_gap: u32,
    phone: String,
}

impl Clinic {
    fn issue(&mut self, rng: &mut Rng) -> String {
        self.next += u64::from(rng.between(1, self.max_gap));
        match self.style {
            MrnStyle::Sequential { width } => format!("{:0width$}", self.next),
            MrnStyle::Prefixed { prefix, width } => format!("{prefix}{:0width$}", self.next),
            MrnStyle::Random { width } => {
                let mut s = rng.between(1, 9).to_string();
                for _ in 1..width {
                    s.push(char::from(b'0' + rng.below(10) as u8));
                }
                s
            }
        }
    }
}

fn clinics(rng: &mut Rng) -> Vec<Clinic> {
    CLINICS
        .iter()
        .enumerate()
        .map(|(i, system)| {
            let style = match i % 5 {
                0 | 1 => MrnStyle::Sequential {
                    width: 7 + rng.below(2),
                },
                2 => MrnStyle::Prefixed {
                    prefix: rng.pick::<&str>(MRN_PREFIXES),
                    width: 7,
                },
                3 => MrnStyle::Random { width: 9 },
                _ => MrnStyle::Sequential { width: 6 },
            };
            Clinic {
                system,
                style,
                next: u64::from(rng.between(1_000, 400_000)),
                max_gap: rng.between(1, 6),
                phone: format!(
                    "{}{}{:04}",
                    rng.pick(AREA_CODES),
                    rng.between(201, 989),
                    rng.below(10_000)
                ),
            }
        })
        .collect()
}

/// What is shared by the people of one household.
#[derive(Clone, Debug)]
struct Household {
    family: String,
    address: Address,
    /// Ten digits.
    phone: String,
    mother_given: String,
    /// The mother's own family name at birth: her children's mother's
    /// maiden name, and her family name when she kept it.
    mother_maiden: String,
    mother_kept_name: bool,
    father_given: String,
    clinic: usize,
    kids: bool,
    /// The household's people in the population (indices).
    members: std::ops::Range<u32>,
}

/// The role a person plays in the household.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Child { multiple: Option<u32> },
    Mother,
    Father,
    Adult,
}

/// One person to write down.
#[derive(Clone, Debug)]
struct Person {
    role: Role,
    sex: Sex,
    given: String,
    birth: Date,
}

/// The generator state: one stream of randomness and the clinics' MRN counters.
#[derive(Debug)]
struct Gen {
    rng: Rng,
    clinics: Vec<Clinic>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut rng = Rng::new(seed);
        let clinics = clinics(&mut rng);
        Gen { rng, clinics }
    }

    fn rare(&mut self, start: &[&str], middle: &[&str], end: &[&str]) -> String {
        let mut name = String::new();
        name.push_str(self.rng.pick::<&str>(start));
        name.push_str(self.rng.pick::<&str>(middle));
        name.push_str(self.rng.pick::<&str>(end));
        name
    }

    fn given(&mut self, sex: Sex, year: u16) -> String {
        if self.rng.chance(RARE_GIVEN) {
            let end = match sex {
                Sex::F => RARE_END_F,
                Sex::M => RARE_END_M,
            };
            return self.rare(RARE_START, RARE_MIDDLE, end);
        }
        let t = tables();
        let (modern, classic, zipf) = match sex {
            Sex::F => (FEMALE_MODERN, FEMALE_CLASSIC, &t.female),
            Sex::M => (MALE_MODERN, MALE_CLASSIC, &t.male),
        };
        let (first, second) = if year >= MODERN_FROM {
            (modern, classic)
        } else {
            (classic, modern)
        };
        let k = zipf.sample(&mut self.rng);
        let name = first
            .get(k)
            .or_else(|| second.get(k - first.len()))
            .copied()
            .unwrap_or("Alex");
        name.to_owned()
    }

    fn family(&mut self) -> String {
        if self.rng.chance(RARE_FAMILY) {
            return self.rare(RARE_FAMILY_START, RARE_FAMILY_MIDDLE, RARE_FAMILY_END);
        }
        FAMILY[tables().family.sample(&mut self.rng)].to_owned()
    }

    fn middle(&mut self, sex: Sex, year: u16) -> String {
        if self.rng.chance(0.35) {
            let list = match sex {
                Sex::F => MIDDLE_FEMALE,
                Sex::M => MIDDLE_MALE,
            };
            return self.rng.pick(list).to_string();
        }
        self.given(sex, year)
    }

    fn date_in(&mut self, year: u16) -> Date {
        let last_month = if year == TODAY.0 { TODAY.1 } else { 12 };
        let month = self.rng.between(1, u32::from(last_month)) as u8;
        let last_day = if (year, month) == (TODAY.0, TODAY.1) {
            TODAY.2
        } else {
            days_in(year, month)
        };
        let day = self.rng.between(1, u32::from(last_day)) as u8;
        Date { year, month, day }
    }

    fn house_number(&mut self) -> u32 {
        match self.rng.below(20) {
            0..=3 => self.rng.between(1, 99),
            4..=11 => self.rng.between(100, 999),
            12..=18 => self.rng.between(1_000, 9_999),
            _ => self.rng.between(10_000, 29_999),
        }
    }

    fn address(&mut self, city: Option<usize>) -> Address {
        let t = tables();
        let city = city.unwrap_or_else(|| t.cities.sample(&mut self.rng));
        let zip = t.city_zip[city] + 3 * self.rng.below(CITIES[city].1) as u32;
        Address {
            house: self.house_number(),
            direction: self
                .rng
                .chance(0.15)
                .then(|| self.rng.below(DIRECTIONS.len())),
            street: self.rng.below(STREETS.len()),
            kind: self.rng.below(STREET_KINDS.len()),
            apartment: self.rng.chance(0.12).then(|| self.rng.between(1, 40)),
            city,
            zip,
        }
    }

    fn phone(&mut self) -> String {
        format!(
            "{}{}{:04}",
            self.rng.pick(AREA_CODES),
            self.rng.between(201, 989),
            self.rng.below(10_000)
        )
    }

    fn ssn(&mut self) -> String {
        let area = loop {
            let a = self.rng.between(1, 899);
            if a != 666 {
                break a;
            }
        };
        format!(
            "{area:03}{:02}{:04}",
            self.rng.between(1, 99),
            self.rng.between(1, 9_999)
        )
    }

    fn household(&mut self, kids: bool) -> Household {
        let mut family = self.family();
        if self.rng.chance(COMPOUND_FAMILY) {
            let other = self.family();
            let joiner = if self.rng.chance(0.7) { "-" } else { " " };
            family = format!("{family}{joiner}{other}");
        }
        let mother_maiden = loop {
            let m = self.family();
            if m != family {
                break m;
            }
        };
        Household {
            family,
            address: self.address(None),
            phone: self.phone(),
            mother_given: String::new(),
            mother_maiden,
            mother_kept_name: self.rng.chance(0.15),
            father_given: String::new(),
            clinic: tables().clinics.sample(&mut self.rng),
            kids,
            members: 0..0,
        }
    }

    /// A household and the people of it who are in the registry.
    fn household_people(&mut self) -> (Household, Vec<Person>) {
        let kids = self.rng.chance(KIDS_HOUSEHOLD);
        let mut h = self.household(kids);
        let mut people = Vec::new();
        if kids {
            let count = self.rng.weighted(KIDS_PER_HOUSEHOLD);
            let mut year = self.rng.between(2002, u32::from(TODAY.0)) as u16;
            let first = year;
            let mut names: Vec<String> = Vec::new();
            while people.len() < count && year <= TODAY.0 {
                let twins = self.rng.chance(TWIN_BIRTH);
                let birth = self.date_in(year);
                for order in 1..=(if twins { 2 } else { 1 }) {
                    let sex = if self.rng.chance(0.5) { Sex::F } else { Sex::M };
                    // Siblings (twins above all) get names of their own.
                    let given = loop {
                        let g = self.given(sex, year);
                        if !names.contains(&g) {
                            break g;
                        }
                    };
                    names.push(given.clone());
                    people.push(Person {
                        role: Role::Child {
                            multiple: twins.then_some(order),
                        },
                        sex,
                        given,
                        birth,
                    });
                }
                year += self.rng.between(1, 4) as u16;
            }
            let mother_year = first - self.rng.between(19, 38) as u16;
            let father_year = mother_year - self.rng.between(0, 6) as u16;
            h.mother_given = self.given(Sex::F, mother_year);
            h.father_given = self.given(Sex::M, father_year);
            if self.rng.chance(MOTHER_IN_REGISTRY) {
                let birth = self.date_in(mother_year);
                people.push(Person {
                    role: Role::Mother,
                    sex: Sex::F,
                    given: h.mother_given.clone(),
                    birth,
                });
            }
            if self.rng.chance(FATHER_IN_REGISTRY) {
                let birth = self.date_in(father_year);
                people.push(Person {
                    role: Role::Father,
                    sex: Sex::M,
                    given: h.father_given.clone(),
                    birth,
                });
            }
        } else {
            let adults = if self.rng.chance(0.5) { 1 } else { 2 };
            for _ in 0..adults {
                // Triangular around 1970: more middle-aged than very old.
                let year = 1935 + ((self.rng.between(0, 70) + self.rng.between(0, 70)) / 2) as u16;
                let sex = if self.rng.chance(0.5) { Sex::F } else { Sex::M };
                let given = self.given(sex, year);
                let birth = self.date_in(year);
                people.push(Person {
                    role: Role::Adult,
                    sex,
                    given,
                    birth,
                });
            }
        }
        (h, people)
    }

    /// The registry's record of one person of household `h`.
    fn record(&mut self, id: String, h: &Household, p: &Person) -> PatientRecord {
        let style = Style {
            upper: self.rng.chance(0.3),
            long_words: self.rng.chance(0.4),
        };
        let child = matches!(p.role, Role::Child { .. });
        let family = match p.role {
            Role::Mother if h.mother_kept_name => h.mother_maiden.clone(),
            _ => h.family.clone(),
        };
        let middle_rate = if child { 0.65 } else { 0.45 };
        let middle = self.rng.chance(middle_rate).then(|| loop {
            let m = self.middle(p.sex, p.birth.year);
            if !m.eq_ignore_ascii_case(&p.given) {
                break m;
            }
        });
        let suffix = (p.sex == Sex::M && self.rng.chance(0.02))
            .then(|| self.rng.pick(&["Jr", "Jr.", "II", "III"]).to_string());
        let clinic = if self.rng.chance(OTHER_CLINIC) {
            tables().clinics.sample(&mut self.rng)
        } else {
            h.clinic
        };
        let mrn = self.clinics[clinic].issue(&mut self.rng);
        let ssn = self
            .rng
            .chance(SSN_PRESENT)
            .then(|| self.ssn())
            .map(|s| self.format_ssn(&s));
        let phone = if !self.rng.chance(PHONE_PRESENT) {
            None
        } else if self.rng.chance(CLINIC_PHONE) {
            Some(self.format_phone(&self.clinics[clinic].phone.clone()))
        } else if self.rng.chance(PLACEHOLDER_PHONE) {
            Some(self.rng.pick(PLACEHOLDER_PHONES).to_string())
        } else {
            Some(self.format_phone(&h.phone))
        };
        let has_address = self.rng.chance(0.97);
        let mmn_rate = if child { 0.65 } else { 0.25 };
        let mothers_maiden_family = if child {
            Some(h.mother_maiden.clone())
        } else {
            Some(self.family())
        }
        .filter(|_| self.rng.chance(mmn_rate));
        let (multiple_birth, birth_order) = match p.role {
            Role::Child {
                multiple: Some(order),
            } => (Some(true), Some(order)),
            _ => (self.rng.chance(0.15).then_some(false), None),
        };
        let (guardian_given, guardian_family) = if child && self.rng.chance(0.8) {
            if self.rng.chance(0.7) {
                let family = if h.mother_kept_name {
                    h.mother_maiden.clone()
                } else {
                    h.family.clone()
                };
                (Some(h.mother_given.clone()), Some(family))
            } else {
                (Some(h.father_given.clone()), Some(h.family.clone()))
            }
        } else {
            (None, None)
        };
        let name = |n: String| cased(&n, style);
        PatientRecord {
            id,
            given: Some(name(p.given.clone())),
            middle: middle.map(name),
            family: Some(name(family)),
            suffix,
            aliases: Vec::new(),
            birth_date: Some(p.birth.iso()),
            sex: Some(p.sex.code().to_owned()),
            identifiers: vec![RecordIdentifier {
                system: self.clinics[clinic].system.to_owned(),
                kind: "MR".to_owned(),
                value: mrn,
            }],
            ssn,
            phone,
            street: has_address.then(|| h.address.street_line(style)),
            city: has_address.then(|| cased(CITIES[h.address.city].0, style)),
            state: (has_address && self.rng.chance(0.95)).then(|| STATE.to_owned()),
            zip: has_address.then(|| self.format_zip(h.address.zip)),
            mothers_maiden_family: mothers_maiden_family.map(name),
            multiple_birth,
            birth_order,
            guardian_given: guardian_given.map(name),
            guardian_family: guardian_family.map(name),
        }
    }

    fn format_phone(&mut self, digits: &str) -> String {
        if digits.len() != 10 {
            return digits.to_owned();
        }
        let (area, exchange, line) = (&digits[..3], &digits[3..6], &digits[6..]);
        match self.rng.below(4) {
            0 => format!("({area}) {exchange}-{line}"),
            1 => format!("{area}-{exchange}-{line}"),
            2 => format!("{area}.{exchange}.{line}"),
            _ => digits.to_owned(),
        }
    }

    fn format_ssn(&mut self, digits: &str) -> String {
        if self.rng.chance(0.6) && digits.len() == 9 {
            format!("{}-{}-{}", &digits[..3], &digits[3..5], &digits[5..])
        } else {
            digits.to_owned()
        }
    }

    fn format_zip(&mut self, zip: u32) -> String {
        if self.rng.chance(0.1) {
            format!("{zip:05}-{:04}", self.rng.below(10_000))
        } else {
            format!("{zip:05}")
        }
    }
}

// ---------------------------------------------------------------------------
// The population

/// A synthetic registry: `people[i]` is person `i`'s one record.
#[derive(Debug)]
pub struct Population {
    pub people: Vec<PatientRecord>,
    households: Vec<Household>,
    /// Households with children (where a new sibling can be born).
    families: Vec<u32>,
    clinics: Vec<Clinic>,
}

impl Population {
    /// `people` persons drawn with `seed`; the same arguments always give
    /// the same population.
    pub fn generate(people: usize, seed: u64) -> Population {
        let mut gen = Gen::new(seed);
        let mut out = Population {
            people: Vec::with_capacity(people),
            households: Vec::with_capacity(people / 2 + 1),
            families: Vec::new(),
            clinics: Vec::new(),
        };
        while out.people.len() < people {
            let (mut h, members) = gen.household_people();
            let first = out.people.len() as u32;
            for p in &members {
                if out.people.len() == people {
                    break;
                }
                let id = format!("SRC{:07}", out.people.len());
                let record = gen.record(id, &h, p);
                out.people.push(record);
            }
            h.members = first..out.people.len() as u32;
            if h.kids {
                out.families.push(out.households.len() as u32);
            }
            out.households.push(h);
        }
        out.clinics = gen.clinics;
        out
    }

    pub fn len(&self) -> usize {
        self.people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// Persons reported as one of a multiple birth.
    pub fn twins(&self) -> usize {
        self.people
            .iter()
            .filter(|p| p.multiple_birth == Some(true))
            .count()
    }

    /// An endless, deterministic stream of queries against this population.
    pub fn queries(&self, seed: u64) -> Queries<'_> {
        let mut gen = Gen::new(seed);
        // New MRNs continue where the population's left off, so a "new"
        // MRN is never one a known person already holds.
        gen.clinics = self.clinics.clone();
        Queries {
            population: self,
            gen,
            made: 0,
        }
    }
}

// ---------------------------------------------------------------------------
// Queries

/// What a query is, for accuracy by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueryKind {
    /// A noisy record of a known person.
    Known,
    /// A noisy record of a known twin.
    KnownTwin,
    /// Somebody not in the population.
    NewPerson,
    /// A child not in the population, born into a known household.
    NewSibling,
}

impl QueryKind {
    pub fn label(self) -> &'static str {
        match self {
            QueryKind::Known => "known",
            QueryKind::KnownTwin => "known twin",
            QueryKind::NewPerson => "new person",
            QueryKind::NewSibling => "new sibling",
        }
    }

    pub fn is_new(self) -> bool {
        matches!(self, QueryKind::NewPerson | QueryKind::NewSibling)
    }
}

/// One record to match, with the truth.
#[derive(Clone, Debug)]
pub struct Query {
    pub record: PatientRecord,
    /// The person (index into [`Population::people`]) the record is of;
    /// `None` for somebody not in the population.
    pub truth: Option<u32>,
    pub kind: QueryKind,
    /// The noise applied to the known person's record.
    pub noise: Vec<&'static str>,
}

/// See [`Population::queries`].
#[derive(Debug)]
pub struct Queries<'p> {
    population: &'p Population,
    gen: Gen,
    made: u64,
}

impl Iterator for Queries<'_> {
    type Item = Query;

    fn next(&mut self) -> Option<Query> {
        let id = format!("Q{:07}", self.made);
        self.made += 1;
        let rng = &mut self.gen.rng;
        if rng.chance(NEW_PERSON) || self.population.is_empty() {
            return Some(self.new_person(id));
        }
        let truth = rng.below(self.population.len());
        let base = &self.population.people[truth];
        let kind = if base.multiple_birth == Some(true) {
            QueryKind::KnownTwin
        } else {
            QueryKind::Known
        };
        let mut record = base.clone();
        record.id = id;
        let noise = Noise {
            gen: &mut self.gen,
            applied: Vec::new(),
        }
        .apply(&mut record);
        Some(Query {
            record,
            truth: Some(truth as u32),
            kind,
            noise,
        })
    }
}

impl Queries<'_> {
    fn new_person(&mut self, id: String) -> Query {
        let gen = &mut self.gen;
        let families = &self.population.families;
        if !families.is_empty() && gen.rng.chance(NEW_SIBLING) {
            let h = &self.population.households[families[gen.rng.below(families.len())] as usize];
            let year = gen.rng.between(u32::from(TODAY.0) - 1, u32::from(TODAY.0)) as u16;
            let sex = if gen.rng.chance(0.5) { Sex::F } else { Sex::M };
            // Parents do not give two living children the same first name.
            let taken = |g: &str| {
                self.population.people[h.members.start as usize..h.members.end as usize]
                    .iter()
                    .any(|p| {
                        p.given
                            .as_deref()
                            .is_some_and(|o| o.eq_ignore_ascii_case(g))
                    })
            };
            let mut given = gen.given(sex, year);
            while taken(&given) {
                given = gen.given(sex, year);
            }
            let person = Person {
                role: Role::Child { multiple: None },
                sex,
                given,
                birth: gen.date_in(year),
            };
            let h = h.clone();
            return Query {
                record: gen.record(id, &h, &person),
                truth: None,
                kind: QueryKind::NewSibling,
                noise: Vec::new(),
            };
        }
        let (h, people) = gen.household_people();
        let person = &people[gen.rng.below(people.len())];
        Query {
            record: gen.record(id, &h, person),
            truth: None,
            kind: QueryKind::NewPerson,
            noise: Vec::new(),
        }
    }
}

/// The ways a second sender's record of the same person differs.
struct Noise<'g> {
    gen: &'g mut Gen,
    applied: Vec<&'static str>,
}

impl Noise<'_> {
    fn chance(&mut self, p: f64, what: &'static str) -> bool {
        let hit = self.gen.rng.chance(p);
        if hit {
            self.applied.push(what);
        }
        hit
    }

    fn apply(mut self, r: &mut PatientRecord) -> Vec<&'static str> {
        self.identifier(r);
        self.names(r);
        self.birth(r);
        self.contact(r);
        self.family_facts(r);
        self.applied
    }

    fn identifier(&mut self, r: &mut PatientRecord) {
        let own = r
            .identifiers
            .first()
            .and_then(|id| CLINICS.iter().position(|c| *c == id.system))
            .unwrap_or(0);
        if self.chance(0.05, "no MRN") {
            r.identifiers.clear();
        } else if self.chance(0.45, "other clinic's MRN") {
            let mut clinic = tables().clinics.sample(&mut self.gen.rng);
            if clinic == own {
                clinic = (clinic + 1) % CLINICS.len();
            }
            let value = self.gen.clinics[clinic].issue(&mut self.gen.rng);
            r.identifiers = vec![RecordIdentifier {
                system: CLINICS[clinic].to_owned(),
                kind: "MR".to_owned(),
                value,
            }];
        } else if self.chance(0.01, "MRN slip") {
            if let Some(id) = r.identifiers.first_mut() {
                id.value = digit_slip(&mut self.gen.rng, &id.value);
            }
        }
        if r.ssn.is_some() {
            if self.chance(0.5, "no SSN") {
                r.ssn = None;
            } else if self.chance(0.01, "SSN slip") {
                r.ssn = r.ssn.as_deref().map(|s| digit_slip(&mut self.gen.rng, s));
            }
        }
    }

    fn names(&mut self, r: &mut PatientRecord) {
        let upper = self.gen.rng.chance(0.3);
        let infant = r
            .birth_date
            .as_deref()
            .is_some_and(|d| d.starts_with(&TODAY.0.to_string()));
        if infant && self.chance(0.08, "placeholder given name") {
            let sex = r.sex.as_deref().unwrap_or("F");
            r.given = Some(if sex == "M" { "BABY BOY" } else { "BABY GIRL" }.to_owned());
        } else if self.chance(0.06, "nickname") {
            let nick = r.given.as_deref().and_then(|g| {
                let list = tables().nicknames.get(&g.to_ascii_uppercase())?;
                Some(self.gen.rng.pick(list).clone())
            });
            match nick {
                Some(n) => r.given = Some(n),
                None => {
                    self.applied.pop();
                }
            }
        } else if self.chance(0.04, "given typo") {
            r.given = r.given.as_deref().map(|g| typo(&mut self.gen.rng, g));
        } else if r.middle.is_some() && self.chance(0.01, "given and middle swapped") {
            std::mem::swap(&mut r.given, &mut r.middle);
        } else if self.chance(0.005, "given and family swapped") {
            std::mem::swap(&mut r.given, &mut r.family);
        }
        if r.middle.is_some() {
            if self.chance(0.30, "no middle") {
                r.middle = None;
            } else if self.chance(0.10, "middle initial") {
                r.middle = r
                    .middle
                    .as_ref()
                    .and_then(|m| m.get(..1))
                    .map(str::to_owned);
            }
        }
        let compound = r
            .family
            .as_deref()
            .is_some_and(|f| f.contains(['-', ' ']) && !f.eq_ignore_ascii_case("De Leon"));
        if compound && self.chance(0.4, "one part of a compound family name") {
            r.family = r.family.as_deref().and_then(|f| {
                let parts: Vec<&str> = f.split(['-', ' ']).collect();
                parts
                    .get(self.gen.rng.below(parts.len()))
                    .map(|p| (*p).to_owned())
            });
        } else if self.chance(0.03, "family typo") {
            r.family = r.family.as_deref().map(|f| typo(&mut self.gen.rng, f));
        }
        if r.suffix.is_some() && self.chance(0.3, "no suffix") {
            r.suffix = None;
        }
        if upper {
            for name in [&mut r.given, &mut r.middle, &mut r.family] {
                *name = name.as_deref().map(str::to_uppercase);
            }
        }
    }

    fn birth(&mut self, r: &mut PatientRecord) {
        let Some(date) = r.birth_date.as_deref().and_then(BirthDate::parse) else {
            return;
        };
        let mut date = Date {
            year: date.year,
            month: date.month,
            day: date.day,
        };
        if self.chance(0.005, "no birth date") {
            r.birth_date = None;
            return;
        }
        if date.day <= 12 && date.day != date.month && self.chance(0.01, "month/day swap") {
            std::mem::swap(&mut date.month, &mut date.day);
        } else if self.chance(0.02, "birth date digit slip") {
            for _ in 0..20 {
                let slipped = digit_slip(&mut self.gen.rng, &date.compact());
                if let Some(d) = BirthDate::parse(&slipped) {
                    date = Date {
                        year: d.year,
                        month: d.month,
                        day: d.day,
                    };
                    break;
                }
            }
        }
        r.birth_date = Some(if self.gen.rng.chance(0.3) {
            date.compact()
        } else {
            date.iso()
        });
        if self.chance(0.02, "no sex") {
            r.sex = None;
        }
    }

    fn contact(&mut self, r: &mut PatientRecord) {
        if r.phone.is_some() {
            if self.chance(0.25, "no phone") {
                r.phone = None;
            } else if self.chance(0.08, "new phone") {
                let p = self.gen.phone();
                r.phone = Some(self.gen.format_phone(&p));
            } else if self.chance(0.04, "phone without area code") {
                r.phone = r.phone.as_deref().map(|p| {
                    let d = matching::text::digits(p);
                    d[d.len().saturating_sub(7)..].to_owned()
                });
            }
        }
        if self.chance(0.10, "moved") {
            let city = tables().cities.sample(&mut self.gen.rng);
            let same_city = r
                .city
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(CITIES[city].0));
            let city = if self.gen.rng.chance(0.6) && !same_city {
                r.city
                    .as_deref()
                    .and_then(|c| CITIES.iter().position(|(n, _)| n.eq_ignore_ascii_case(c)))
                    .unwrap_or(city)
            } else {
                city
            };
            let address = self.gen.address(Some(city));
            let style = Style {
                upper: self.gen.rng.chance(0.3),
                long_words: self.gen.rng.chance(0.4),
            };
            r.street = Some(address.street_line(style));
            r.city = Some(cased(CITIES[city].0, style));
            r.zip = Some(self.gen.format_zip(address.zip));
        } else if r.street.is_some() && self.chance(0.05, "no street") {
            r.street = None;
        } else if r.street.is_some() && self.chance(0.03, "street typo") {
            r.street = r.street.as_deref().map(|s| typo(&mut self.gen.rng, s));
        } else if self.chance(0.15, "street words spelled differently") {
            r.street = r.street.as_deref().map(respell_street);
        }
    }

    fn family_facts(&mut self, r: &mut PatientRecord) {
        if r.mothers_maiden_family.is_some() {
            if self.chance(0.40, "no mother's maiden name") {
                r.mothers_maiden_family = None;
            } else if self.chance(0.02, "mother's maiden name typo") {
                r.mothers_maiden_family = r
                    .mothers_maiden_family
                    .as_deref()
                    .map(|m| typo(&mut self.gen.rng, m));
            }
        }
        if r.guardian_given.is_some() || r.guardian_family.is_some() {
            if self.chance(0.35, "no guardian") {
                r.guardian_given = None;
                r.guardian_family = None;
            } else if self.chance(0.10, "guardian family name only") {
                r.guardian_given = None;
            }
        }
        if r.multiple_birth == Some(true) {
            if self.chance(0.30, "no multiple-birth flag") {
                r.multiple_birth = None;
            }
            if self.chance(0.40, "no birth order") {
                r.birth_order = None;
            }
        } else if r.multiple_birth.is_some() && self.chance(0.5, "no multiple-birth flag") {
            r.multiple_birth = None;
        }
    }
}

/// One keying slip: a letter next to the intended one on the keyboard, a
/// letter dropped, doubled, or two letters exchanged.
fn typo(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let letters: Vec<usize> = chars
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect();
    if letters.len() < 3 {
        return text.to_owned();
    }
    let at = letters[rng.below(letters.len())];
    let c = chars[at];
    match rng.below(4) {
        0 => {
            let row = KEY_NEIGHBOURS[usize::from(c.to_ascii_lowercase() as u8 - b'a')].as_bytes();
            let n = char::from(*rng.pick(row));
            chars[at] = if c.is_ascii_uppercase() {
                n.to_ascii_uppercase()
            } else {
                n
            };
        }
        1 => {
            chars.remove(at);
        }
        2 => chars.insert(at, c),
        _ => {
            let next = at + 1;
            if next < chars.len() && chars[next].is_ascii_alphabetic() {
                chars.swap(at, next);
            } else {
                chars.remove(at);
            }
        }
    }
    chars.into_iter().collect()
}

/// One digit replaced by another, or two neighbouring digits exchanged.
fn digit_slip(rng: &mut Rng, text: &str) -> String {
    let mut bytes: Vec<u8> = text.bytes().collect();
    let digits: Vec<usize> = (0..bytes.len())
        .filter(|i| bytes[*i].is_ascii_digit())
        .collect();
    if digits.len() < 2 {
        return text.to_owned();
    }
    let k = rng.below(digits.len());
    let at = digits[k];
    if rng.chance(0.7) || k + 1 == digits.len() {
        let old = bytes[at];
        bytes[at] = b'0' + ((old - b'0') + rng.between(1, 9) as u8) % 10;
    } else {
        bytes.swap(at, digits[k + 1]);
    }
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

/// `Maple Avenue` ↔ `Maple Ave`, `North` ↔ `N`.
fn respell_street(street: &str) -> String {
    street
        .split(' ')
        .map(|word| {
            STREET_KINDS
                .iter()
                .chain(DIRECTIONS)
                .find_map(|(short, long)| {
                    if word.eq_ignore_ascii_case(short) {
                        Some((*long).to_owned())
                    } else if word.eq_ignore_ascii_case(long) {
                        Some((*short).to_owned())
                    } else {
                        None
                    }
                })
                .unwrap_or_else(|| word.to_owned())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// Accuracy against the truth

/// How the queries of one kind were decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub queries: u64,
    /// Linked to the true person.
    pub certain_right: u64,
    /// Linked to someone else, or a new person linked at all: a false merge.
    pub certain_wrong: u64,
    /// Left for review with the true person among the candidates.
    pub possible_listed: u64,
    /// Left for review without the true person (or for a new person).
    pub possible_other: u64,
    /// No candidate: correct for a new person, a miss for a known one.
    pub none: u64,
}

/// Decisions tallied per [`QueryKind`].
#[derive(Clone, Debug, Default)]
pub struct Accuracy {
    by_kind: BTreeMap<QueryKind, Tally>,
}

impl Accuracy {
    /// Records one decision: its grade, the person linked (certain) and the
    /// persons listed as candidates.
    pub fn add(
        &mut self,
        query: &Query,
        grade: Grade,
        linked: Option<u32>,
        listed: impl IntoIterator<Item = u32>,
    ) {
        let t = self.by_kind.entry(query.kind).or_default();
        t.queries += 1;
        match grade {
            Grade::Certain if linked.is_some() && linked == query.truth => t.certain_right += 1,
            Grade::Certain => t.certain_wrong += 1,
            Grade::Possible => {
                let truth = query.truth;
                if truth.is_some() && listed.into_iter().any(|p| Some(p) == truth) {
                    t.possible_listed += 1;
                } else {
                    t.possible_other += 1;
                }
            }
            Grade::None => t.none += 1,
        }
    }

    pub fn kind(&self, kind: QueryKind) -> Tally {
        self.by_kind.get(&kind).copied().unwrap_or_default()
    }

    /// All known (or all new) kinds together.
    pub fn total(&self, new: bool) -> Tally {
        let mut sum = Tally::default();
        for (_, t) in self.by_kind.iter().filter(|(k, _)| k.is_new() == new) {
            sum.queries += t.queries;
            sum.certain_right += t.certain_right;
            sum.certain_wrong += t.certain_wrong;
            sum.possible_listed += t.possible_listed;
            sum.possible_other += t.possible_other;
            sum.none += t.none;
        }
        sum
    }
}

impl fmt::Display for Accuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u64, of: u64| 100.0 * n as f64 / of.max(1) as f64;
        writeln!(
            f,
            "  {:<12} {:>8} {:>16} {:>16} {:>18} {:>16} {:>16}",
            "kind",
            "queries",
            "certain right",
            "FALSE MERGE",
            "possible (truth)",
            "possible (other)",
            "none"
        )?;
        for (kind, t) in &self.by_kind {
            let none = if kind.is_new() {
                "none (right)"
            } else {
                "none (missed)"
            };
            writeln!(
                f,
                "  {:<12} {:>8} {:>8} {:>6.2}% {:>8} {:>6.3}% {:>10} {:>6.2}% {:>8} {:>6.2}% {:>8} {:>6.2}%  ({none})",
                kind.label(),
                t.queries,
                t.certain_right,
                pct(t.certain_right, t.queries),
                t.certain_wrong,
                pct(t.certain_wrong, t.queries),
                t.possible_listed,
                pct(t.possible_listed, t.queries),
                t.possible_other,
                pct(t.possible_other, t.queries),
                t.none,
                pct(t.none, t.queries),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_large_and_without_duplicates() {
        let mut seen = std::collections::BTreeSet::new();
        for name in FAMILY {
            assert!(
                seen.insert(name.to_ascii_uppercase()),
                "family {name} twice"
            );
        }
        assert!(FAMILY.len() >= 300, "{} family names", FAMILY.len());
        for (sex, lists) in [
            ("female", [FEMALE_MODERN, FEMALE_CLASSIC]),
            ("male", [MALE_MODERN, MALE_CLASSIC]),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            for name in lists.concat() {
                assert!(seen.insert(name), "{sex} {name} twice");
            }
            assert!(seen.len() >= 300, "{} {sex} names", seen.len());
        }
        assert_eq!(CLINICS.len(), 50);
    }

    #[test]
    fn the_same_seed_gives_the_same_people_and_queries() {
        let a = Population::generate(500, 7);
        let b = Population::generate(500, 7);
        assert_eq!(a.people, b.people);
        let qa: Vec<_> = a.queries(1).take(50).map(|q| (q.record, q.truth)).collect();
        let qb: Vec<_> = b.queries(1).take(50).map(|q| (q.record, q.truth)).collect();
        assert_eq!(qa, qb);
        assert_ne!(Population::generate(500, 8).people, a.people);
    }

    #[test]
    fn the_population_looks_like_an_iis() {
        let pop = Population::generate(20_000, 1);
        assert_eq!(pop.len(), 20_000);
        let share = |f: &dyn Fn(&PatientRecord) -> bool| {
            pop.people.iter().filter(|p| f(p)).count() as f64 / pop.len() as f64
        };
        let twins = pop.twins() as f64 / pop.len() as f64;
        assert!((0.01..0.03).contains(&twins), "twins {twins}");
        let ssn = share(&|p| p.ssn.is_some());
        assert!((0.25..0.35).contains(&ssn), "ssn {ssn}");
        let children = share(&|p| p.birth_date.as_deref().is_some_and(|d| d >= "2007"));
        assert!((0.45..0.70).contains(&children), "children {children}");
        let smith = share(&|p| {
            p.family
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case("smith"))
        });
        assert!((0.004..0.02).contains(&smith), "smith {smith}");
        // Every record normalizes to something linkable, nobody's middle
        // name repeats the first, and twins differ in their first names.
        let m = matching::Matcher::default();
        for p in &pop.people {
            assert!(m.normalize(p).is_linkable(), "{p:?}");
            assert_ne!(p.middle, p.given, "{p:?}");
        }
        for pair in pop.people.windows(2) {
            if pair[0].birth_order == Some(1) && pair[1].birth_order == Some(2) {
                assert_eq!(pair[0].birth_date, pair[1].birth_date);
                assert_ne!(pair[0].given, pair[1].given);
                assert_eq!(pair[0].multiple_birth, Some(true));
            }
        }
    }

    #[test]
    fn queries_carry_their_truth() {
        let pop = Population::generate(5_000, 3);
        let queries: Vec<Query> = pop.queries(9).take(2_000).collect();
        let m = matching::Matcher::default();
        let new = queries.iter().filter(|q| q.truth.is_none()).count();
        assert!((300..500).contains(&new), "{new} new of 2000");
        for q in &queries {
            assert_eq!(q.truth.is_none(), q.kind.is_new());
            // Without noise, a known person's query differs in form only
            // (case, date and phone formats), never in substance.
            if let (Some(t), true) = (q.truth, q.noise.is_empty()) {
                let base = &pop.people[t as usize];
                assert_eq!(m.normalize(&q.record), m.normalize(base), "{q:?}");
            }
        }
        assert!(queries.iter().any(|q| q.noise.contains(&"nickname")));
        assert!(queries.iter().any(|q| q.kind == QueryKind::NewSibling));
    }

    #[test]
    fn typos_and_slips_change_one_thing() {
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let t = typo(&mut rng, "Washington");
            assert!(t.len().abs_diff(10) <= 1, "{t}");
            let s = digit_slip(&mut rng, "20170304");
            assert_eq!(s.len(), 8);
            assert!(
                matching::text::one_slip(&s, "20170304") || s == "20170304",
                "{s}"
            );
        }
        assert_eq!(respell_street("12 N Maple Avenue"), "12 North Maple Ave");
    }

    #[test]
    fn accuracy_counts_false_merges() {
        let pop = Population::generate(100, 3);
        let q = pop
            .queries(1)
            .find(|q| q.truth.is_some())
            .expect("a known query");
        let truth = q.truth.expect("truth");
        let mut a = Accuracy::default();
        a.add(&q, Grade::Certain, Some(truth), []);
        a.add(&q, Grade::Certain, Some(truth + 1), []);
        a.add(&q, Grade::Possible, None, [truth]);
        a.add(&q, Grade::None, None, []);
        let t = a.kind(q.kind);
        assert_eq!(
            (
                t.queries,
                t.certain_right,
                t.certain_wrong,
                t.possible_listed,
                t.none
            ),
            (4, 1, 1, 1, 1)
        );
        assert!(a.to_string().contains("FALSE MERGE"));
    }
}
